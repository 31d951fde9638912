package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/curvopt/curvopt/internal/sigctx"
	"github.com/curvopt/curvopt/train"
)

// resumed returns the configuration to resume the run in o.cfg.OutDir with:
// the one recorded in its checkpoint, with the flags given on the command
// line (set) laid over it. The library then refuses a flag that may not
// change on resume (see train.RunConfig), naming both values.
func resumed(o *options, set map[string]bool) (train.Config, error) {
	rec, err := train.ReadRunConfig(o.cfg.OutDir)
	if err != nil {
		return rec, err
	}
	src := o.cfg
	for name, v := range src.Hyper {
		if set[name] {
			rec.Hyper[name] = v
		}
	}
	copyIf := map[string]func(){
		"optimizer":        func() { rec.Optimizer = src.Optimizer },
		"model":            func() { rec.Model = src.Model },
		"hidden":           func() { rec.Model = src.Model },
		"data":             func() { rec.Data.Kind, rec.Data.Context = src.Data.Kind, src.Data.Context },
		"data-dir":         func() { rec.Data.Dir = src.Data.Dir },
		"data-file":        func() { rec.Data.File = src.Data.File },
		"coarse":           func() { rec.Data.Coarse = src.Data.Coarse },
		"synthetic-train":  func() { rec.Data.Synthetic.Train = src.Data.Synthetic.Train },
		"synthetic-test":   func() { rec.Data.Synthetic.Test = src.Data.Synthetic.Test },
		"batch":            func() { rec.BatchSize = src.BatchSize },
		"eval-batch":       func() { rec.EvalBatch = src.EvalBatch },
		"gnb-batch":        func() { rec.GNBBatch = src.GNBBatch },
		"drop-last":        func() { rec.DropLast = src.DropLast },
		"seed":             func() { rec.Seed, rec.Data.Synthetic.Seed = src.Seed, src.Data.Synthetic.Seed },
		"dtype":            func() { rec.Dtype = src.Dtype },
		"clip":             func() { rec.ClipNorm = src.ClipNorm },
		"normalize":        func() { rec.Normalize = src.Normalize },
		"augment":          func() { rec.Augment = src.Augment },
		"checkpoint-every": func() { rec.CheckpointEvery = src.CheckpointEvery },
		"eval-every":       func() { rec.EvalEvery = src.EvalEvery },
		"hessian-every":    func() { rec.HessianEvery = src.HessianEvery },
		"hessian-quick":    func() { rec.HessianQuick = src.HessianQuick },
		"hessian-precond":  func() { rec.HessianPrecond = src.HessianPrecond },
	}
	for name, f := range copyIf {
		if set[name] {
			f()
		}
	}
	if set["epochs"] || set["steps"] {
		rec.Steps, rec.Epochs = src.Steps, src.Epochs
	}
	if set["schedule"] {
		w := rec.Schedule.Warmup
		rec.Schedule = src.Schedule
		rec.Schedule.Warmup = w
	}
	if set["warmup"] {
		rec.Schedule.Warmup = src.Schedule.Warmup
	}
	rec.LogEvery = src.LogEvery
	return rec, nil
}

// interrupted reports a run stopped by sig and returns the exit status
// 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).
func interrupted(sig os.Signal, dir string, w io.Writer) int {
	msg := "train: stopped by " + sigctx.Name(sig)
	if c, err := train.ReadCheckpointInfo(filepath.Join(dir, "checkpoint.gob")); err == nil {
		msg += fmt.Sprintf(" after step %d; the checkpoint in %s is saved: continue with -resume -out %s", c.Step, dir, dir)
	}
	fmt.Fprintln(w, msg)
	return sigctx.ExitStatus(sig)
}

// modelName describes a recorded model briefly: its nodes and input shape.
func modelName(c train.Config) string {
	d := c.Model
	if d.Tokens > 0 {
		return fmt.Sprintf("a %d-node model on %v tokens of %d", len(d.Nodes), d.InputShape, d.Tokens)
	}
	return fmt.Sprintf("a %d-node model on inputs %v", len(d.Nodes), d.InputShape)
}
