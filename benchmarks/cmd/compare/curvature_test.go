package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunCurvatureSmoke: -sharpness-precond measures λ(P⁻¹H) from step 1
// on, results.md has the section "Curvature and the chosen rate",
// sharpness.csv the bound, and chosen.csv the rates and knobs used.
func TestRunCurvatureSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	dir := t.TempDir()
	args := []string{"-optimizers", "sgd,adam", "-data", "synthetic train=120 test=40", "-hidden", "4", "-steps", "4",
		"-batch", "20", "-seeds", "1", "-eval-every", "2", "-lrs", "sgd=0.05,adam=0.002", "-hyper", "sgd:momentum=0.5",
		"-sharpness-every", "2", "-sharpness-precond",
		"-out", filepath.Join(dir, "out"), "-work", filepath.Join(dir, "work")}
	var out, errw bytes.Buffer
	require.NoError(t, run(context.Background(), args, &out, &errw), errw.String())
	md, err := os.ReadFile(filepath.Join(dir, "out", "results.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "## Curvature and the chosen rate")
	assert.Regexp(t, `\| sgd \| 0\.05 \| 3 \| `, string(md), "SGD's limit 2(1+μ) at μ = 0.5")
	assert.Regexp(t, `\| adam \| 0\.002 \| 38 \| `, string(md))

	read := func(name string) [][]string {
		f, err := os.Open(filepath.Join(dir, "out", name))
		require.NoError(t, err)
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		require.NoError(t, err)
		return rows
	}
	rows := read("sharpness.csv")
	require.Len(t, rows, 1+2*3, "steps 1, 2 and 4 of each optimizer")
	for _, r := range rows[1:] {
		assert.NotEmpty(t, r[len(r)-1], "lr_bound of %v", r)
	}
	assert.Equal(t, [][]string{{"optimizer", "lr", "knobs", "hyper"}, {"sgd", "0.05", "", ""}, {"adam", "0.002", "", ""}}, read("chosen.csv"))
}

// TestParseHyperLaterWins: results/study-horizons/run.sh's curvature part
// appends each optimizer's chosen knobs (chosen.csv) after the study's own
// -hyper, and relies on the later value winning.
func TestParseHyperLaterWins(t *testing.T) {
	h, err := parseHyper("sgd:momentum=0.9;mfac:momentum=0.9,weight_decay=0.0005;sgd:nesterov=true,momentum=0.5;mfac:damp=0.001")
	require.NoError(t, err)
	assert.Equal(t, 0.5, h["sgd"]["momentum"])
	assert.Equal(t, true, h["sgd"]["nesterov"])
	assert.Equal(t, 0.9, h["mfac"]["momentum"])
	assert.Equal(t, 0.001, h["mfac"]["damp"])
}
