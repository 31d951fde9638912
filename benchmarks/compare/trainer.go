package compare

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/train"
)

// TrainRunner adapts train.Run to a TrainFunc. Sweep runs train on SweepTrain
// and evaluate on Val; final runs train on Train and evaluate on Test.
type TrainRunner struct {
	// Base is the configuration shared by every run (model, budget, batch,
	// dtype, ...). Its Optimizer, Hyper, Seed, data sets, OutDir, Resume and
	// Progress are set per run.
	Base train.Config
	// Hyper holds per-optimizer overrides other than lr (may be nil).
	Hyper map[string]train.Hyper
	// The data sets; SweepTrain and Val are needed only for sweep runs.
	Train, Test, SweepTrain, Val *data.Dataset
	// EvalEvery > 0 evaluates a comparison run every so many steps in
	// addition to the ends of epochs (train.Config.EvalEvery). Sweep runs
	// evaluate only at the ends of epochs and of the run: the sweep reads
	// only the final validation result, and on a short budget the extra
	// evaluations of dozens of sweep runs cost as much as several runs.
	EvalEvery int
	// Log receives train.Run's own progress lines (nil: none).
	Log io.Writer
}

// Run is a TrainFunc: it trains spec with train.Run in workDir, resuming
// from a checkpoint left there by an interrupted attempt, and reads the whole
// curve back from workDir's step and epoch logs.
func (t *TrainRunner) Run(ctx context.Context, spec RunSpec, workDir string) (*RunResult, error) {
	cfg := t.Base
	cfg.Optimizer = spec.Optimizer
	cfg.Seed = spec.Seed
	cfg.Hyper = train.Hyper{}
	for k, v := range t.Hyper[spec.Optimizer] {
		cfg.Hyper[k] = v
	}
	knobs, err := KnobHyperAt(spec.Knobs, spec.LR)
	if err != nil {
		return nil, err
	}
	for k, v := range knobs {
		cfg.Hyper[k] = v
	}
	cfg.Hyper["lr"] = spec.LR
	cfg.Train, cfg.Test = t.Train, t.Test
	if spec.Phase == PhaseSweep {
		if t.SweepTrain == nil || t.Val == nil {
			return nil, errors.New("sweep run without a validation split")
		}
		cfg.Train, cfg.Test = t.SweepTrain, t.Val
	}
	cfg.OutDir = workDir
	cfg.Progress = t.Log
	if spec.Steps > 0 {
		cfg.Steps, cfg.Epochs = spec.Steps, 0 // an extra budget, with its own schedule over it
	}
	total, err := totalSteps(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Steps, cfg.Epochs = total, 0
	if cfg.Schedule.Kind == "cosine" && cfg.Schedule.Total == 0 {
		cfg.Schedule.Total = total // decay over the run's budget
	}
	cfg.EvalEvery = t.EvalEvery
	if spec.Phase == PhaseSweep {
		cfg.EvalEvery = 0 // the sweep reads the final validation result only
	}
	cfg.HessianEvery, cfg.HessianQuick = spec.SharpnessEvery, spec.SharpnessEvery > 0
	cfg.HessianPrecond = spec.SharpnessPrecond && spec.SharpnessEvery > 0
	_, statErr := os.Stat(filepath.Join(workDir, "checkpoint.gob"))
	cfg.Resume = statErr == nil // an interrupted attempt left a checkpoint
	last, runErr := train.Run(ctx, cfg)
	if runErr != nil && !IsDivergence(runErr) {
		return nil, runErr
	}
	res, err := readLogs(workDir)
	if err != nil {
		return nil, err
	}
	if spec.Optimizer == "mfac" {
		addWindowFill(res.StepLog, cfg.Hyper)
	}
	if runErr != nil {
		res.Diverged, res.Error = true, divergence(runErr)
	} else if last != nil {
		res.StateBytes = last.StateBytes
	}
	return res, nil
}

// addWindowFill records M-FAC's window fill, min(step, m)/m with m the
// run's ngrads (mfac.Default's when not set), in each step's Diag: M-FAC
// adds one gradient row a step, and its empty rows still count in 1/m.
func addWindowFill(log []StepPoint, h train.Hyper) {
	m := float64(mfac.Default().NGrads)
	switch v := h["ngrads"].(type) {
	case float64:
		m = max(v, 1)
	case int:
		m = float64(max(v, 1))
	}
	for i := range log {
		if log[i].Diag == nil {
			log[i].Diag = map[string]float64{}
		}
		log[i].Diag["window_fill"] = math.Min(float64(log[i].Step), m) / m
	}
}

// divergence returns what a stored result records of a diverged run's
// error: where and why it diverged, without train.Run's note on the
// checkpoint it left (a path inside the work directory, which the Runner
// removes once the result is stored).
func divergence(err error) string {
	msg := err.Error()
	if inner := errors.Unwrap(err); inner != nil && strings.HasPrefix(msg, inner.Error()+"; ") {
		return inner.Error() // train.Run's form: "<divergence>; <checkpoint note>"
	}
	return msg
}

// totalSteps returns the run's budget in steps.
func totalSteps(cfg train.Config) (int, error) {
	if cfg.Steps > 0 {
		return cfg.Steps, nil
	}
	if cfg.Train == nil {
		return 0, errors.New("an epoch budget needs the training set")
	}
	batch := cfg.BatchSize
	if batch == 0 {
		batch = 128
	}
	per := cfg.Train.Len() / batch
	if per == 0 {
		return 0, fmt.Errorf("%s has %d images, fewer than one batch of %d", cfg.Train.Name, cfg.Train.Len(), batch)
	}
	epochs := cfg.Epochs
	if epochs == 0 {
		epochs = 1
	}
	return epochs * per, nil
}

// readLogs builds a result from a run directory's steps.jsonl and
// epochs.jsonl: the whole curve, also across an interrupted and resumed run.
// Evaluations repeated at one step keep the
// last.
func readLogs(dir string) (*RunResult, error) {
	steps, err := readJSONL[train.StepRecord](filepath.Join(dir, "steps.jsonl"))
	if err != nil {
		return nil, err
	}
	epochs, err := readJSONL[train.EpochRecord](filepath.Join(dir, "epochs.jsonl"))
	if err != nil {
		return nil, err
	}
	res := &RunResult{}
	wall, sumMS := 0.0, 0.0
	for _, s := range steps {
		wall += s.StepMS / 1e3
		sumMS += s.StepMS
		res.StepLog = append(res.StepLog, StepPoint{Step: s.Step, WallS: wall, Loss: s.Loss, StepMS: s.StepMS, LR: s.LR, HessTop: s.HessTop,
			PrecondTop: s.PrecondTop, StabilityLimit: s.StabilityLimit, PrecondConverged: s.PrecondConverged, Diag: s.Diag})
	}
	if n := len(steps); n > 0 {
		res.Steps = steps[n-1].Step
		res.MeanStepMS = sumMS / float64(n)
	}
	for _, e := range epochs {
		p := EvalPoint{Step: e.Step, WallS: e.WallS, TrainLoss: e.TrainLoss, TestLoss: e.TestLoss, TestAcc: e.TestAcc}
		if n := len(res.Evals); n > 0 && res.Evals[n-1].Step == e.Step {
			if e.TrainLoss == 0 {
				p.TrainLoss = res.Evals[n-1].TrainLoss
			}
			res.Evals[n-1] = p
			continue
		}
		res.Evals = append(res.Evals, p)
	}
	res.TrainWallS = wall
	for _, e := range res.Evals {
		res.BestTestAcc = max(res.BestTestAcc, e.TestAcc)
	}
	if n := len(res.Evals); n > 0 {
		res.FinalTestAcc = res.Evals[n-1].TestAcc
		res.TrainWallS = max(res.TrainWallS, res.Evals[n-1].WallS)
	}
	return res, nil
}

// maxLogBytes bounds a run's steps.jsonl and epochs.jsonl (about 200 bytes
// a step).
const maxLogBytes = 1 << 30

// readJSONL decodes one R per line of path (a missing file is empty), a
// regular file of at most maxLogBytes.
func readJSONL[R any](path string) ([]R, error) {
	f, size, err := fileio.Open(path, maxLogBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []R
	sc := bufio.NewScanner(io.LimitReader(f, size))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r R
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
