package optim_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// doctor copies the golden file src into a fresh directory under the name
// name, after applying edit to its decoded JSON, and returns the new path.
func doctor(t *testing.T, src, name string, edit func(map[string]any)) string {
	t.Helper()
	dir, err := golden.Dir()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, src))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	edit(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, out, 0o644))
	return path
}

func steps(m map[string]any) []any { return m["steps"].([]any) }

// TestGoldenDoctoredFilesFail feeds doctored copies of real golden files to
// the harness and requires each to be refused with an error naming the file
// and the field, so that no file passes without being checked.
func TestGoldenDoctoredFilesFail(t *testing.T) {
	cases := []struct {
		name, src string
		edit      func(map[string]any)
		field     string
	}{
		{"unknown optimizer", "opt_adam.json", func(m map[string]any) { m["optimizer"] = "adam_v2" }, `optimizer: "adam_v2" is unknown`},
		{"zero steps", "opt_sgd_momentum.json", func(m map[string]any) { m["steps"] = []any{} }, "steps: no steps"},
		{"state removed from every step", "opt_adam.json", func(m map[string]any) {
			for _, s := range steps(m) {
				delete(s.(map[string]any), "state")
			}
		}, "steps[0].state.exp_avg: missing"},
		{"one state entry removed", "opt_sophiag.json", func(m map[string]any) {
			delete(steps(m)[4].(map[string]any)["state"].(map[string]any), "hessian")
		}, "steps[4].state.hessian: missing"},
		{"extra hyperparameter", "opt_adamw.json", func(m map[string]any) { m["hyper"].(map[string]any)["maximize"] = true }, "hyper.maximize: not consumed"},
		{"unknown top-level field", "opt_mfac.json", func(m map[string]any) { m["momentum_dampening"] = 0.5 }, `unknown field "momentum_dampening"`},
		{"unknown step field", "opt_sgd_momentum.json", func(m map[string]any) { steps(m)[2].(map[string]any)["nesterov_buf"] = []any{1.0} }, `unknown field "nesterov_buf"`},
		{"unknown state entry", "opt_sgd_momentum.json", func(m map[string]any) {
			st := steps(m)[1].(map[string]any)["state"].(map[string]any)
			st["exp_avg"] = st["momentum_buffer"]
		}, "steps[1].state.exp_avg: not a state entry of sgd"},
		{"extra not recorded by the optimizer", "opt_adam.json", func(m map[string]any) {
			s := steps(m)[0].(map[string]any)
			s["ihvp"] = s["grad"]
		}, "steps[0].ihvp: not recorded by adam"},
		{"short gradient", "opt_adahessian.json", func(m map[string]any) {
			s := steps(m)[3].(map[string]any)
			s["grad"] = s["grad"].([]any)[1:]
		}, "steps[3].grad: 50 values, want d = 51"},
		{"short state entry", "opt_adam.json", func(m map[string]any) {
			st := steps(m)[2].(map[string]any)["state"].(map[string]any)
			st["exp_avg_sq"] = st["exp_avg_sq"].([]any)[:3]
		}, "steps[2].state.exp_avg_sq: 3 values"},
		{"wrong init length", "opt_sgd_momentum.json", func(m map[string]any) {
			p := m["params"].([]any)[0].(map[string]any)
			p["init"] = append(p["init"].([]any), 1.0)
		}, "params[0].init"},
		{"missing hyperparameter", "opt_sophiag.json", func(m map[string]any) { delete(m["hyper"].(map[string]any), "rho") }, "hyper.rho: missing"},
		{"float32 data", "opt_adam.json", func(m map[string]any) { m["dtype"] = "float32" }, "dtype"},
		{"unknown kind", "opt_adam.json", func(m map[string]any) { m["kind"] = "optimizer-trajectory-v2" }, `kind: "optimizer-trajectory-v2"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := doctor(t, c.src, "doctored_"+c.src, c.edit)
			_, _, err := loadGolden(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "doctored_"+c.src, "the error names the file")
			assert.Contains(t, err.Error(), c.field, "the error names the field")
			t.Logf("%s", err)
		})
	}
}

// TestGoldenDispatchOnKind requires files to be found by their "kind", not
// their name: a trajectory under another name is read and checked (and a
// doctored one under another name fails), and a file of an unknown kind
// makes the directory unusable.
func TestGoldenDispatchOnKind(t *testing.T) {
	good := doctor(t, "opt_sgd_momentum.json", "sgd-reference.data.json", func(map[string]any) {})
	dir := filepath.Dir(good)
	files, err := golden.FilesIn(dir, golden.KindTrajectory)
	require.NoError(t, err)
	require.Equal(t, []string{good}, files)
	tr, g, err := loadGolden(good)
	require.NoError(t, err)
	runTrajectory(t, tr, g, false)

	bad := doctor(t, "opt_adam.json", "curvature_notes.json", func(m map[string]any) { m["optimizer"] = "adam_v2" })
	files, err = golden.FilesIn(filepath.Dir(bad), golden.KindTrajectory)
	require.NoError(t, err)
	require.Equal(t, []string{bad}, files)
	_, _, err = loadGolden(bad)
	require.ErrorContains(t, err, `curvature_notes.json: optimizer: "adam_v2" is unknown`)

	unknown := doctor(t, "opt_adam.json", "opt_adam.json", func(m map[string]any) { m["kind"] = "optimizer-trajectory-v2" })
	_, err = golden.FilesIn(filepath.Dir(unknown), golden.KindCurvature)
	require.ErrorContains(t, err, `opt_adam.json: kind "optimizer-trajectory-v2": unknown`)

	nokind := doctor(t, "opt_adam.json", "x.json", func(m map[string]any) { delete(m, "kind") })
	_, err = golden.FilesIn(filepath.Dir(nokind), golden.KindTrajectory)
	require.ErrorContains(t, err, "x.json: kind: missing")
}
