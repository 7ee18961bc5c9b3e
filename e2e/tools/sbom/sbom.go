// Package sbom writes an SPDX 2.3 software bill of materials of Go binaries
// from the module information the Go toolchain embeds in them (what `go
// version -m` prints): the main module, every dependency module linked in,
// with its version and module-sum, and the Go standard library. It needs no
// tool beyond the Go standard library, so the release builds it offline.
package sbom

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Binary is one executable the SBOM describes.
type Binary struct {
	// Name is how the release names it, e.g. "albdrain linux/arm64".
	Name string
	// Path is the file on this machine.
	Path string
}

// Document is the part of SPDX 2.3's JSON form that albdrain writes.
type Document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      CreationInfo   `json:"creationInfo"`
	Packages          []Package      `json:"packages"`
	Relationships     []Relationship `json:"relationships"`
}

// CreationInfo says when and by what the document was made.
type CreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

// Package is a binary or a Go module.
type Package struct {
	SPDXID           string        `json:"SPDXID"`
	Name             string        `json:"name"`
	VersionInfo      string        `json:"versionInfo,omitempty"`
	DownloadLocation string        `json:"downloadLocation"`
	FilesAnalyzed    bool          `json:"filesAnalyzed"`
	Checksums        []Checksum    `json:"checksums,omitempty"`
	ExternalRefs     []ExternalRef `json:"externalRefs,omitempty"`
	Comment          string        `json:"comment,omitempty"`
}

// Checksum is a package's digest.
type Checksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

// ExternalRef is a package URL (purl) of a module.
type ExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

// Relationship links two SPDX elements.
type Relationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// Build returns the SBOM named name of the binaries, made at created
// (fixed by the caller, so that the same binaries give the same document).
func Build(name string, created time.Time, bins ...Binary) (*Document, error) {
	doc := &Document{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        name,
		CreationInfo: CreationInfo{
			Created:  created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: albdrain-release"},
		},
	}
	mods := map[string]Package{}
	h := sha256.New()
	for i, b := range bins {
		info, err := buildinfo.ReadFile(b.Path)
		if err != nil {
			return nil, fmt.Errorf("sbom: %s: %w", b.Path, err)
		}
		sum, err := fileSHA256(b.Path)
		if err != nil {
			return nil, err
		}
		h.Write([]byte(b.Name + sum))
		id := fmt.Sprintf("SPDXRef-Binary-%d", i)
		doc.Packages = append(doc.Packages, Package{
			SPDXID:           id,
			Name:             b.Name,
			VersionInfo:      info.Main.Version,
			DownloadLocation: "NOASSERTION",
			Checksums:        []Checksum{{Algorithm: "SHA256", ChecksumValue: sum}},
			Comment:          fmt.Sprintf("%s built from %s with %s", filepath.Base(b.Path), info.Path, info.GoVersion),
		})
		doc.Relationships = append(doc.Relationships, Relationship{doc.SPDXID, "DESCRIBES", id})
		deps := []Package{module(info.Main.Path, info.Main.Version, info.Main.Sum), stdlib(info.GoVersion)}
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			deps = append(deps, module(d.Path, d.Version, d.Sum))
		}
		for _, p := range deps {
			mods[p.SPDXID] = p
			doc.Relationships = append(doc.Relationships, Relationship{id, "DEPENDS_ON", p.SPDXID})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(mods)) {
		doc.Packages = append(doc.Packages, mods[id])
	}
	doc.DocumentNamespace = "https://github.com/albdrain/albdrain/spdx/" + name + "-" + hex.EncodeToString(h.Sum(nil))[:16]
	return doc, nil
}

// WriteFile writes doc as indented JSON to path.
func (doc *Document) WriteFile(path string) error {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// module is the package of a Go module, with its purl.
func module(path, version, sum string) Package {
	p := Package{
		SPDXID:           "SPDXRef-Module-" + spdxID(path+"-"+version),
		Name:             path,
		VersionInfo:      version,
		DownloadLocation: "NOASSERTION",
		ExternalRefs: []ExternalRef{{
			ReferenceCategory: "PACKAGE-MANAGER",
			ReferenceType:     "purl",
			ReferenceLocator:  "pkg:golang/" + path + "@" + version,
		}},
	}
	if sum != "" {
		p.Comment = "go.sum " + sum
	}
	if version != "" && version != "(devel)" {
		p.DownloadLocation = "https://proxy.golang.org/" + path + "/@v/" + version + ".zip"
	}
	return p
}

// stdlib is the Go standard library of the toolchain goVersion ("go1.26.6").
func stdlib(goVersion string) Package {
	p := module("stdlib", strings.TrimPrefix(goVersion, "go"), "")
	p.DownloadLocation = "https://go.dev/dl/"
	return p
}

// spdxID keeps only the characters SPDX allows in identifiers.
func spdxID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("sbom: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
