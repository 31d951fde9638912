// Package compare runs the convergence comparison of curvopt's optimizers:
// each optimizer trained on the same model, data and budget over several
// seeds, optionally after a learning-rate sweep on a validation split, with
// every finished run stored so that a rerun only trains what is missing. It
// aggregates the runs (mean ± std over seeds, time to a target accuracy) and
// writes a Markdown table, CSV curves and plots.
//
// The training itself is injected (TrainFunc), so the runner, the aggregation
// and the reports are tested without training; TrainRunner adapts train.Run.
package compare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/train"
)

// Phase names the two kinds of run.
const (
	// PhaseSweep trains on the training part of a split and evaluates on
	// its validation part.
	PhaseSweep = "sweep"
	// PhaseFinal trains on the full training set and evaluates on the test
	// set.
	PhaseFinal = "final"
)

// RunSpec identifies one training run. LR is always explicit (a default is
// resolved with train.BaseLR before a spec is made), so every stored run
// records the learning rate it used.
type RunSpec struct {
	Phase     string `json:"phase"`
	Optimizer string `json:"optimizer"`
	// Knobs are swept hyperparameters other than lr, laid over the
	// optimizer's -hyper settings: "name=value" pairs joined by ',' in
	// sorted order (CanonicalKnobs), e.g. "beta2=0.95,weight_decay=0.1";
	// empty when only the rate is swept.
	Knobs string  `json:"knobs,omitempty"`
	LR    float64 `json:"lr"`
	Seed  uint64  `json:"seed"`
	// Steps > 0 overrides the comparison's budget for this run (an extra
	// budget, e.g. AdamW at 1.5 and 2 times the others' steps, with its own
	// cosine schedule over it); 0: the comparison's budget.
	Steps int `json:"steps,omitempty"`
	// SharpnessEvery > 0 tracks the Hessian's top eigenvalue every so many
	// steps (train.Config.HessianEvery in its quick mode).
	SharpnessEvery int `json:"sharpness_every,omitempty"`
	// SharpnessPrecond, with SharpnessEvery, also measures the top
	// eigenvalue of the optimizer's preconditioned Hessian and its
	// stability limit, from step 1 on (train.Config.HessianPrecond).
	SharpnessPrecond bool `json:"sharpness_precond,omitempty"`
}

// Key is the run's file-name stem, e.g. "adam-lr0.001-seed1", or with
// knobs "sophiag[rho=0.05]-lr0.001-seed1". The learning
// rate is written in full (the shortest decimal that reads back as the same
// float64), so distinct rates never share a key: 0.0015 and 0.002 are
// "lr0.0015" and "lr0.002", never both "lr0.002".
func (s RunSpec) Key() string {
	name := s.Optimizer
	if s.Knobs != "" {
		name += "[" + strings.ReplaceAll(s.Knobs, "/", "_per_") + "]" // a file name: "5e-4/lr" → "5e-4_per_lr"
	}
	if s.Steps > 0 {
		return fmt.Sprintf("%s-lr%s-steps%d-seed%d", name, strconv.FormatFloat(s.LR, 'g', -1, 64), s.Steps, s.Seed)
	}
	return fmt.Sprintf("%s-lr%s-seed%d", name, strconv.FormatFloat(s.LR, 'g', -1, 64), s.Seed)
}

// Label names the run's configuration in tables and plots: the optimizer,
// its knobs and an extra budget, e.g. "adamw beta2=0.95 @3000 steps".
func (s RunSpec) Label() string {
	l := s.Optimizer
	if s.Knobs != "" {
		l += " " + s.Knobs
	}
	if s.Steps > 0 {
		l += fmt.Sprintf(" @%d steps", s.Steps)
	}
	return l
}

// StepPoint is one training step of a curve: the step count (1-based), the
// training time so far in seconds (evaluation and sharpness measurements
// excluded), the batch loss, the learning rate the step used, the
// optimizer's diagnostics and, on the steps where it was measured, the
// Hessian's top eigenvalue on the batch.
type StepPoint struct {
	Step    int      `json:"step"`
	WallS   float64  `json:"wall_s"`
	Loss    float64  `json:"loss"`
	StepMS  float64  `json:"step_ms"`
	LR      float64  `json:"lr,omitempty"`
	HessTop *float64 `json:"hessian_top,omitempty"`
	// PrecondTop and StabilityLimit are train.StepRecord's: λ(P⁻¹H) and
	// the optimizer's limit c, where measured (RunSpec.SharpnessPrecond).
	PrecondTop     *float64 `json:"precond_top,omitempty"`
	StabilityLimit *float64 `json:"stability_limit,omitempty"`
	// PrecondConverged is false where the power iteration stopped at its
	// budget (PrecondTop is then its last estimate).
	PrecondConverged *bool `json:"precond_converged,omitempty"`
	// Diag holds the optimizer's per-step diagnostics (train.StepRecord's
	// Diag: SophiaG's and SophiaH's "win_rate", the share of coordinates
	// not clipped) and, for M-FAC, "window_fill", the share of its m
	// gradient rows filled after this step (min(step, m)/m).
	Diag map[string]float64 `json:"diag,omitempty"`
}

// EvalPoint is one evaluation of a curve (on the test set, or the
// validation split in a sweep).
type EvalPoint struct {
	Step      int     `json:"step"`
	WallS     float64 `json:"wall_s"`
	TrainLoss float64 `json:"train_loss"`
	TestLoss  float64 `json:"test_loss"`
	TestAcc   float64 `json:"test_acc"`
}

// RunResult is the stored outcome of one finished run.
type RunResult struct {
	Spec RunSpec `json:"spec"`
	// Fingerprint identifies the settings shared by all runs (model, data,
	// budget, ...); a stored run is reused only under the same fingerprint.
	Fingerprint string `json:"fingerprint"`
	// Diverged is set when training stopped on a non-finite loss or
	// gradient; Error says where. Accuracies are then those of the last
	// evaluation before it (zero if none).
	Diverged     bool        `json:"diverged,omitempty"`
	Error        string      `json:"error,omitempty"`
	FinalTestAcc float64     `json:"final_test_acc"`
	BestTestAcc  float64     `json:"best_test_acc"`
	Steps        int         `json:"steps"`
	TrainWallS   float64     `json:"train_wall_s"`
	MeanStepMS   float64     `json:"mean_step_ms"`
	StateBytes   int64       `json:"state_bytes"`
	StepLog      []StepPoint `json:"step_log"`
	Evals        []EvalPoint `json:"evals"`
}

// TrainFunc trains the run spec describes. workDir is the run's private
// directory for checkpoints (it may hold one from an interrupted attempt,
// to resume from). A run that diverges is a result with Diverged set, not an
// error; an error means the run did not finish (interrupted, I/O, bad
// configuration) and is not stored.
type TrainFunc func(ctx context.Context, spec RunSpec, workDir string) (*RunResult, error)

// Runner trains a list of runs, reusing the stored results of finished ones.
type Runner struct {
	// Dir receives one JSON file per finished run: Dir/<phase>/<key>.json.
	Dir string
	// WorkDir holds the runs' checkpoints while they train:
	// WorkDir/<phase>/<key>-<fingerprint>. A finished run's work directory
	// is removed unless KeepWork is set: renamed to a name ending in
	// ".removing", then removed, so that a kill at any moment leaves either
	// the directory of a stored run or a trash one, both of which the next
	// RunAll removes.
	WorkDir  string
	KeepWork bool
	// Fingerprint is stored with every result; stored results with another
	// fingerprint are retrained.
	Fingerprint string
	// Upgrade, if not nil, converts a stored result's fingerprint written
	// by an older version (renamed settings) before it is compared.
	Upgrade func(stored string) string
	// Train trains one run.
	Train TrainFunc
	// Progress receives a line per run (nil: none).
	Progress io.Writer
	// Now is the clock for the progress ETA (nil: time.Now).
	Now func() time.Time
}

// ResultPath returns where the result of spec is stored.
func (r *Runner) ResultPath(spec RunSpec) string {
	return filepath.Join(r.Dir, spec.Phase, spec.Key()+".json")
}

// maxResultBytes bounds the size of a stored result file (a million steps
// of curve take about 150 MB).
const maxResultBytes = 1 << 30

// trashSuffix ends the name of a finished run's work directory while it is
// removed.
const trashSuffix = ".removing"

// workPath returns the work directory of spec.
func (r *Runner) workPath(spec RunSpec) string {
	return filepath.Join(r.WorkDir, spec.Phase, spec.Key()+"-"+shortHash(r.Fingerprint))
}

// Load returns the stored result of spec, or nil when there is none usable
// (missing, unreadable, not a regular file, over 1 GiB, or made under
// another fingerprint).
func (r *Runner) Load(spec RunSpec) *RunResult {
	b, err := fileio.ReadFile(r.ResultPath(spec), maxResultBytes)
	if err != nil {
		return nil
	}
	var res RunResult
	if err := json.Unmarshal(b, &res); err != nil || res.Spec != spec {
		return nil
	}
	if fp := res.Fingerprint; fp != r.Fingerprint && (r.Upgrade == nil || r.Upgrade(fp) != r.Fingerprint) {
		return nil
	}
	res.Fingerprint = r.Fingerprint
	return &res
}

// RunAll returns the results of specs, in order: stored ones are reused,
// missing ones are trained and stored as soon as each finishes. It stops at
// the first error, or before the next run once ctx is cancelled (the runs
// finished before stay stored). It first removes what an earlier, killed
// RunAll may have left: temporary result files, work directories being
// removed, and (unless KeepWork) the work directories of stored runs.
func (r *Runner) RunAll(ctx context.Context, specs []RunSpec) ([]*RunResult, error) {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	if err := r.removeLeftovers(specs); err != nil {
		return nil, err
	}
	out := make([]*RunResult, len(specs))
	var todo []int
	for i, s := range specs {
		if res := r.Load(s); res != nil {
			out[i] = res
			if !r.KeepWork {
				if err := removeDir(r.workPath(s)); err != nil {
					return out, fmt.Errorf("compare: stored run %s: %w", s.Key(), err)
				}
			}
		} else {
			todo = append(todo, i)
		}
	}
	r.printf("%d runs: %d stored, %d to train\n", len(specs), len(specs)-len(todo), len(todo))
	start := now()
	for n, i := range todo {
		s := specs[i]
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("compare: before %s run %s: %w", s.Phase, s.Key(), err)
		}
		work := r.workPath(s)
		if err := os.MkdirAll(work, 0o755); err != nil {
			return out, fmt.Errorf("compare: run %s: %w", s.Key(), err)
		}
		t0 := now()
		res, err := r.Train(ctx, s, work)
		if err != nil {
			return out, fmt.Errorf("compare: %s run %s: %w", s.Phase, s.Key(), err)
		}
		res.Spec, res.Fingerprint = s, r.Fingerprint
		if err := writeJSONAtomic(r.ResultPath(s), res); err != nil {
			return out, fmt.Errorf("compare: storing run %s: %w", s.Key(), err)
		}
		if !r.KeepWork {
			if err := removeDir(work); err != nil {
				return out, fmt.Errorf("compare: run %s: %w", s.Key(), err)
			}
		}
		out[i] = res
		el := now().Sub(start)
		eta := time.Duration(float64(el) / float64(n+1) * float64(len(todo)-n-1))
		status := fmt.Sprintf("final %.2f%% best %.2f%%", 100*res.FinalTestAcc, 100*res.BestTestAcc)
		if res.Diverged {
			status = "DIVERGED (" + res.Error + ")"
		}
		r.printf("[%d/%d] %s %s lr=%g seed=%d: %s, %.1f ms/step, %s (elapsed %s, ETA %s)\n",
			n+1, len(todo), s.Phase, s.Optimizer, s.LR, s.Seed, status, res.MeanStepMS,
			now().Sub(t0).Round(100*time.Millisecond), el.Round(time.Second), eta.Round(time.Second))
	}
	return out, nil
}

func (r *Runner) printf(format string, args ...any) {
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, format, args...)
	}
}

// shortHash is an 8-hex-digit FNV-1a hash of s.
func shortHash(s string) string {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return fmt.Sprintf("%08x", h)
}

// IsDivergence reports whether a training error is a stop on a non-finite
// loss, gradient or curvature estimate.
func IsDivergence(err error) bool {
	return errors.Is(err, train.ErrDiverged) || errors.Is(err, optim.ErrNonFinite)
}

// removeLeftovers removes what a killed RunAll can leave behind in the
// phases of specs: temporary files of result writes (fileio.TmpInfix) and
// work directories renamed for removal (trashSuffix). Nothing else is
// touched: a work directory without a stored result holds a checkpoint to
// resume from.
func (r *Runner) removeLeftovers(specs []RunSpec) error {
	phases := map[string]bool{}
	for _, s := range specs {
		if phases[s.Phase] {
			continue
		}
		phases[s.Phase] = true
		if err := fileio.RemoveTemps(filepath.Join(r.Dir, s.Phase)); err != nil {
			return fmt.Errorf("compare: %w", err)
		}
		trash, err := filepath.Glob(filepath.Join(r.WorkDir, s.Phase, "*"+trashSuffix))
		if err != nil {
			return err
		}
		for _, p := range trash {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("compare: removing the leftover %s: %w", p, err)
			}
		}
	}
	return nil
}

// removeDir removes the work directory dir, if present, in an order that a
// kill cannot orphan: renamed to dir+trashSuffix (one atomic step), then
// removed. A kill before the rename leaves dir, whose stored result makes
// RunAll remove it; a kill after leaves the trash, which RunAll removes.
func removeDir(dir string) error {
	trash := dir + trashSuffix
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing the work directory %s: %w", dir, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("removing the work directory %s: %w", trash, err)
	}
	return nil
}

// writeJSONAtomic writes v as JSON to path with WriteFile.
func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFile(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// WriteFile creates path's directory and writes path atomically and
// durably with fileio.WriteAtomic (permissions 0644): readers see the old
// file or the whole new one, and a finished write survives a crash.
func WriteFile(path string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fileio.WriteAtomic(path, 0o644, fill)
}

// Orphans returns the stored result files under Dir (Dir/<phase>/*.json)
// that belong to none of used: runs of an earlier plan (another grid,
// more seeds, a rate no longer chosen), which a report built from used
// never reads. Sorted; none when Dir does not exist.
func (r *Runner) Orphans(used []RunSpec) ([]string, error) {
	keep := make(map[string]bool, len(used))
	for _, s := range used {
		keep[filepath.Clean(r.ResultPath(s))] = true
	}
	phases, err := os.ReadDir(r.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("compare: listing the stored runs in %s: %w", r.Dir, err)
	}
	var out []string
	for _, ph := range phases { // ReadDir sorts by name
		if !ph.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(r.Dir, ph.Name()))
		if err != nil {
			return nil, fmt.Errorf("compare: listing the stored runs in %s: %w", r.Dir, err)
		}
		for _, f := range files {
			p := filepath.Join(r.Dir, ph.Name(), f.Name())
			if f.Type().IsRegular() && strings.HasSuffix(f.Name(), ".json") && !keep[filepath.Clean(p)] {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// RemoveOrphans removes the files Orphans(used) lists and returns them.
func (r *Runner) RemoveOrphans(used []RunSpec) ([]string, error) {
	orphans, err := r.Orphans(used)
	if err != nil {
		return nil, err
	}
	for i, f := range orphans {
		if err := os.Remove(f); err != nil {
			return orphans[:i], fmt.Errorf("compare: removing the orphan run %s: %w", f, err)
		}
	}
	return orphans, nil
}
