package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/hessian/spectrum/plot"
	"github.com/curvopt/curvopt/train"
)

type analyzeOptions struct {
	batches, top, slq, probes int
	perLayer                  bool
	traceMethod               string
}

// analyze runs analysis mode on the run in -out: the model and dtype come
// from its checkpoint, the data, batch size, normalisation and seed from
// its config.json, each overridden by a flag given on the command line (a
// run without config.json takes them all from the flags). Cancelling ctx
// (SIGINT, SIGTERM) stops it with ctx's error.
func analyze(ctx context.Context, o *options) error {
	cfg, err := train.ReadRunConfig(o.cfg.OutDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cfg = o.cfg
	case err != nil:
		return err
	default:
		if o.setAny("data", "data-dir", "data-file", "coarse", "synthetic-train", "synthetic-test") {
			cfg.Data = o.cfg.Data
		}
		if o.set["batch"] {
			cfg.BatchSize = o.cfg.BatchSize
		}
		if o.set["normalize"] {
			cfg.Normalize = o.cfg.Normalize
		}
		if o.set["seed"] {
			cfg.Seed = o.cfg.Seed
		}
		if cfg.BatchSize < 1 {
			return fmt.Errorf("%s/config.json has no batch size: give -batch", o.cfg.OutDir)
		}
		cfg.Memory, cfg.MemoryLimit = o.cfg.Memory, o.cfg.MemoryLimit
		cfg.Progress, cfg.Terminal = o.cfg.Progress, o.cfg.Terminal
	}
	ac := train.AnalyzeConfig{Batches: o.analysis.batches, Top: o.analysis.top,
		SLQSteps: o.analysis.slq, Probes: o.analysis.probes, PerLayer: o.analysis.perLayer,
		TraceMethod: spectrum.TraceMethod(o.analysis.traceMethod)}
	a, err := train.Analyze(ctx, cfg, ac, cfg.Progress)
	if err != nil {
		return err
	}
	return writeDensity(cfg.OutDir, a, cfg.Progress)
}

// writeDensity draws a's density (if any) to dir/density.png and
// dir/density.svg.
func writeDensity(dir string, a *train.Analysis, w io.Writer) error {
	if len(a.Density.X) == 0 {
		return nil
	}
	curve := plot.Curve{Label: "model", Density: &spectrum.Density{X: a.Density.X, Y: a.Density.Y}}
	opts := plot.PlotOptions{Title: fmt.Sprintf("Hessian eigenvalue density (step %d)", a.Step), LogY: true}
	for _, ext := range []string{"png", "svg"} {
		if err := plot.WriteDensityPlot(filepath.Join(dir, "density."+ext), opts, curve); err != nil {
			return fmt.Errorf("analyze: %w", err)
		}
	}
	if w != nil {
		fmt.Fprintf(w, "wrote density.png and density.svg in %s\n", dir)
	}
	return nil
}

// setAny reports whether any of the named flags was given.
func (o *options) setAny(names ...string) bool {
	for _, n := range names {
		if o.set[n] {
			return true
		}
	}
	return false
}
