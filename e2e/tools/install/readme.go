package install

import (
	"bufio"
	"fmt"
	"strings"
)

// Commands returns the shell commands of the ```sh blocks in the README
// section headed heading ("## Install"), each split into words as a POSIX
// shell splits them: quotes and backslashes are removed, a backslash at a
// line's end continues it, and comments are dropped. $NAME is expanded
// from vars, and a variable vars lacks is an error, so that a command is
// never run half-expanded.
func Commands(readme, heading string, vars map[string]string) ([][]string, error) {
	section, ok := sectionOf(readme, heading)
	if !ok {
		return nil, fmt.Errorf("the README has no section %q", heading)
	}
	var cmds [][]string
	inBlock := false
	var pending string
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !inBlock && strings.TrimSpace(line) == "```sh":
			inBlock = true
			continue
		case inBlock && strings.TrimSpace(line) == "```":
			inBlock = false
			continue
		case !inBlock:
			continue
		}
		if c, ok := strings.CutSuffix(line, `\`); ok {
			pending += c + " "
			continue
		}
		words, err := split(pending+line, vars)
		if err != nil {
			return nil, err
		}
		pending = ""
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
	}
	return cmds, sc.Err()
}

// sectionOf returns the text under heading up to the next heading of the
// same or a higher level.
func sectionOf(doc, heading string) (string, bool) {
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		return "", false
	}
	level := len(strings.Fields(heading)[0])
	for n := 1; n <= level; n++ {
		if i := strings.Index(rest, "\n"+strings.Repeat("#", n)+" "); i >= 0 {
			rest = rest[:i]
		}
	}
	return rest, true
}

// split splits one command line into words.
func split(line string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '\\' && i+1 < len(rs):
			// Within double quotes a backslash escapes only $ " \ and `.
			if quote == '"' && !strings.ContainsRune("$\"\\`", rs[i+1]) {
				w.WriteRune(r)
				continue
			}
			i++
			w.WriteRune(rs[i])
			inWord = true
		case r == '"':
			quote ^= '"'
			inWord = true
		case r == '\'' && quote == 0:
			quote = '\''
			inWord = true
		case r == '$':
			j := i + 1
			for j < len(rs) && (rs[j] == '_' || 'A' <= rs[j] && rs[j] <= 'Z' || 'a' <= rs[j] && rs[j] <= 'z' || '0' <= rs[j] && rs[j] <= '9') {
				j++
			}
			v, ok := vars[string(rs[i+1:j])]
			if !ok {
				return nil, fmt.Errorf("%q: $%s is not set", line, string(rs[i+1:j]))
			}
			w.WriteString(v)
			inWord = true
			i = j - 1
		case quote == 0 && (r == ' ' || r == '\t'):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case quote == 0 && r == '#' && !inWord:
			return words, nil
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", line)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
