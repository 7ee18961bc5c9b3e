//go:build tools

// Package actionlint pins the actionlint command that `make lint` runs on
// the GitHub Actions workflows.
package actionlint

import _ "github.com/rhysd/actionlint/cmd/actionlint"
