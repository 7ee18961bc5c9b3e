package image

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// finalStage is what the Dockerfile's last stage puts in the image.
type finalStage struct {
	From       string
	Files      []string
	User       string
	Entrypoint []string
}

// parseFinalStage reads the instructions of the Dockerfile's last stage that
// shape the image: its base, COPY destinations, USER and ENTRYPOINT.
func parseFinalStage(t *testing.T, dockerfile string) (finalStage, string) {
	t.Helper()
	var st finalStage
	var build string
	for line := range strings.Lines(strings.ReplaceAll(dockerfile, "\\\n", " ")) {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			st = finalStage{From: fields[len(fields)-1]}
			if len(fields) >= 4 && strings.EqualFold(fields[len(fields)-2], "AS") {
				st.From = fields[len(fields)-3]
			}
		case "COPY":
			st.Files = append(st.Files, fields[len(fields)-1])
		case "USER":
			st.User = fields[1]
		case "ENTRYPOINT":
			raw := strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
			if err := json.Unmarshal([]byte(raw), &st.Entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %s is not in exec form: %v", raw, err)
			}
		case "RUN":
			if strings.Contains(line, "go build") {
				build = line
			}
		}
	}
	sort.Strings(st.Files)
	return st, build
}

// TestDockerfileAgrees checks that the Dockerfile kept for Docker users builds
// the image that `make image` builds: same empty base, files, user and
// entrypoint, and binaries compiled the same way.
func TestDockerfileAgrees(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	got, build := parseFinalStage(t, string(raw))

	img := buildAlbdrain(t)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := finalStage{From: "scratch", User: cfg.Config.User, Entrypoint: cfg.Config.Entrypoint}
	files, err := Extract(img, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for p := range files {
		want.Files = append(want.Files, p)
	}
	sort.Strings(want.Files)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Dockerfile's image differs from make image's (-make image +Dockerfile):\n%s", d)
	}
	for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "./cmd/albdrain ", "./cmd/albdrain-hold"} {
		if !strings.Contains(build, flag) {
			t.Errorf("the Dockerfile's go build lacks %s, which GoBuild uses: %s", flag, build)
		}
	}
}
