package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/hessian/spectrum/plot"
	"github.com/curvopt/curvopt/train"
)

type analyzeOptions struct {
	batches, top, slq, probes int
	perLayer                  bool
}

// analyze runs train.Analyze and draws its eigenvalue density to
// density.png and density.svg in the run's directory.
func analyze(cfg train.Config, o analyzeOptions, w io.Writer) error {
	a, err := train.Analyze(cfg, train.AnalyzeConfig{Batches: o.batches, Top: o.top, SLQSteps: o.slq, Probes: o.probes, PerLayer: o.perLayer}, w)
	if err != nil {
		return err
	}
	return writeDensity(cfg.OutDir, a, w)
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
