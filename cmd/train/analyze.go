package main

import (
	"io"

	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/train"
)

type analyzeOptions struct {
	batches, top, slq, probes int
	perLayer                  bool
	traceMethod               string
}

func analyze(cfg train.Config, o analyzeOptions, w io.Writer) error {
	_, err := train.Analyze(cfg, train.AnalyzeConfig{Batches: o.batches, Top: o.top, SLQSteps: o.slq, Probes: o.probes, PerLayer: o.perLayer,
		TraceMethod: spectrum.TraceMethod(o.traceMethod)}, w)
	return err
}
