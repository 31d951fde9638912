package spectrum

import (
	"errors"
	"fmt"
)

// AnalysisConfig selects the quantities [Analyze] computes; a nil field
// skips that quantity.
type AnalysisConfig struct {
	// Top configures the largest eigenvalues (usually LargestAlgebraic).
	Top *LanczosConfig
	// Bottom configures the smallest eigenvalues (usually
	// SmallestAlgebraic).
	Bottom *LanczosConfig
	// Trace configures the trace estimate (Hutchinson or Hutch++, by its
	// Method).
	Trace *TraceConfig
	// Density configures stochastic Lanczos quadrature.
	Density *SLQConfig
}

// Report holds the spectrum quantities of the whole model or of one block.
type Report struct {
	// Name is "model" for the whole Hessian, else the block's name.
	Name string
	// Block is the block analysed; for the whole model it spans all
	// parameters.
	Block Block
	// Top and Bottom are the eigenpairs at either end (nil when skipped).
	Top, Bottom *EigenResult
	// Trace is the Hutchinson estimate (nil when skipped).
	Trace *TraceResult
	// Density is the SLQ quadrature (nil when skipped); smooth it with
	// [SLQResult.Density].
	Density *SLQResult
}

// Analyze computes the configured quantities for the whole operator and then
// for each block's diagonal block H_bb (see [BlockOperator]; every block
// product costs one full product). Results come in that order, the model
// first. Eigenpair counts K are capped at each block's size. Non-convergence does not stop the analysis: its results are kept
// (Converged false) and the returned error joins the [*NotConvergedError]s,
// so errors.Is(err, ErrNotConverged) reports it. Any other error stops the
// analysis and is returned with the reports finished so far.
func Analyze(op Operator, blocks []Block, cfg AnalysisConfig, rng Rand) ([]Report, error) {
	d, err := checkOperator(op)
	if err != nil {
		return nil, err
	}
	if err := checkRand(rng); err != nil {
		return nil, err
	}
	if cfg.Top == nil && cfg.Bottom == nil && cfg.Trace == nil && cfg.Density == nil {
		return nil, invalidf("analyze: nothing to compute")
	}
	type target struct {
		name  string
		block Block
		op    Operator
	}
	targets := []target{{name: "model", block: Block{Name: "model", Size: d}, op: op}}
	for _, b := range blocks {
		bo, err := NewBlockOperator(op, b)
		if err != nil {
			return nil, err
		}
		targets = append(targets, target{name: b.Name, block: b, op: bo})
	}
	var soft []error
	keep := func(name, what string, err error) error {
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrNotConverged) {
			soft = append(soft, fmt.Errorf("%s %s: %w", name, what, err))
			return nil
		}
		return fmt.Errorf("spectrum: analyze %s %s: %w", name, what, err)
	}
	var reports []Report
	for _, tg := range targets {
		r := Report{Name: tg.name, Block: tg.block}
		dim := tg.op.Dim()
		if cfg.Top != nil {
			c := *cfg.Top
			c.K = min(c.K, dim)
			r.Top, err = Lanczos(tg.op, c, rng)
			if err = keep(tg.name, "top eigenvalues", err); err != nil {
				return reports, err
			}
		}
		if cfg.Bottom != nil {
			c := *cfg.Bottom
			c.K = min(c.K, dim)
			r.Bottom, err = Lanczos(tg.op, c, rng)
			if err = keep(tg.name, "bottom eigenvalues", err); err != nil {
				return reports, err
			}
		}
		if cfg.Trace != nil {
			r.Trace, err = Trace(tg.op, *cfg.Trace, rng)
			if err = keep(tg.name, "trace", err); err != nil {
				return reports, err
			}
		}
		if cfg.Density != nil {
			r.Density, err = SLQ(tg.op, *cfg.Density, rng)
			if err = keep(tg.name, "density", err); err != nil {
				return reports, err
			}
		}
		reports = append(reports, r)
	}
	return reports, errors.Join(soft...)
}
