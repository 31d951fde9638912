package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/hessian/spectrum"
	"gorgonia.org/tensor"
)

// AnalyzeConfig configures Analyze.
type AnalyzeConfig struct {
	// Batches is the number of training batches (of Config.BatchSize) the
	// Hessian is averaged over, weighted by batch size (default 4).
	Batches int
	// Top is the number of largest eigenvalues (default 3).
	Top int
	// SLQSteps and Probes configure the density (defaults 40 and 2).
	SLQSteps, Probes int
	// PerLayer also analyses each parameter tensor's diagonal block.
	PerLayer bool
}

// BlockSpectrum is the analysis of the whole model or of one parameter.
type BlockSpectrum struct {
	Name           string    `json:"name"`
	Size           int       `json:"size"`
	TopEigenvalues []float64 `json:"top_eigenvalues"`
	MinEigenvalue  float64   `json:"min_eigenvalue"`
	Converged      bool      `json:"converged"`
	Trace          float64   `json:"trace"`
	TraceStdErr    float64   `json:"trace_stderr"`
	TraceSamples   int       `json:"trace_samples"`
}

// Analysis is what Analyze writes to spectrum.json.
type Analysis struct {
	Checkpoint string          `json:"checkpoint"`
	Step       int             `json:"step"`
	Batches    int             `json:"batches"`
	BatchSize  int             `json:"batch_size"`
	Blocks     []BlockSpectrum `json:"blocks"`
	Density    struct {
		X []float64 `json:"x"`
		Y []float64 `json:"y"`
	} `json:"density"`
	// Problems lists non-converged estimates (reported, not hidden).
	Problems []string `json:"problems,omitempty"`
}

// Analyze loads OutDir/checkpoint.gob (the model spec and optimizer come
// from the checkpoint; the dataset, dtype and batch size from cfg), builds the
// Hessian of the training loss averaged over ac.Batches batches, and writes
// spectrum.json (top and bottom eigenvalues by Lanczos, Hutchinson trace,
// for the model and optionally per parameter) and density.png/density.svg
// (stochastic Lanczos quadrature) to OutDir.
func Analyze(cfg Config, ac AnalyzeConfig, w io.Writer) (*Analysis, error) {
	if ac.Batches == 0 {
		ac.Batches = 4
	}
	if ac.Top == 0 {
		ac.Top = 3
	}
	if ac.SLQSteps == 0 {
		ac.SLQSteps = 40
	}
	if ac.Probes == 0 {
		ac.Probes = 2
	}
	if ac.Batches < 1 || ac.Top < 1 || ac.SLQSteps < 2 || ac.Probes < 1 {
		return nil, fmt.Errorf("analyze: batches %d, top %d, SLQ steps %d and probes %d must be positive (SLQ steps >= 2)", ac.Batches, ac.Top, ac.SLQSteps, ac.Probes)
	}
	if cfg.OutDir == "" {
		return nil, errors.New("analyze: no output directory holding a checkpoint")
	}
	path := filepath.Join(cfg.OutDir, checkpointFile)
	ck, err := LoadCheckpoint(path)
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	if err := json.Unmarshal([]byte(ck.Model), &cfg.Model); err != nil {
		return nil, fmt.Errorf("analyze: %s: model spec: %w", path, err)
	}
	cfg.Optimizer = ck.Optimizer
	cfg.Resume = true
	cfg.Progress = nil
	if ck.Dtype == "float64" {
		cfg.Dtype = tensor.Float64
	} else {
		cfg.Dtype = tensor.Float32
	}
	r, err := setup(cfg, false)
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	defer r.close()

	batches, err := fixedBatches(r, ac.Batches)
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	sweep, err := spectrum.NewSweep(r.eng, len(batches), func(i int) (float64, error) {
		return float64(len(batches[i].labels)), r.eng.SetBatch(batches[i].x, batches[i].labels)
	})
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	var blocks []spectrum.Block
	if ac.PerLayer {
		for _, b := range r.eng.ParamBlocks() {
			blocks = append(blocks, spectrum.Block{Name: b.Name, Offset: b.Offset, Size: b.Size, Shape: b.Shape})
		}
	}
	// Tolerances for an analysis (the package defaults aim at 1e-10
	// residuals, which a 60k-parameter model only reaches after hundreds
	// of products): eigenvalues to ~1e-8 relative with residuals below
	// 1e-6·‖H‖, the trace to a 5% relative standard error.
	top := spectrum.LanczosConfig{K: ac.Top, Which: spectrum.LargestAlgebraic, MaxIter: 200, Tol: 1e-8, ResidualTol: 1e-6}
	bottom := spectrum.LanczosConfig{K: 1, Which: spectrum.SmallestAlgebraic, MaxIter: 200, Tol: 1e-8, ResidualTol: 1e-6}
	trace := spectrum.TraceConfig{MinSamples: 10, MaxSamples: 100, Tol: 0.05}
	slq := spectrum.SLQConfig{Probes: ac.Probes, Steps: min(ac.SLQSteps, r.eng.Dim())}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xa11a))
	reports, aerr := spectrum.Analyze(sweep, blocks, spectrum.AnalysisConfig{Top: &top, Bottom: &bottom, Trace: &trace, Density: &slq}, rng)
	if reports == nil {
		return nil, fmt.Errorf("analyze: %w", aerr)
	}
	out := &Analysis{Checkpoint: path, Step: ck.Step, Batches: len(batches), BatchSize: cfg.BatchSize}
	if aerr != nil {
		out.Problems = append(out.Problems, aerr.Error())
	}
	for _, rep := range reports {
		bs := BlockSpectrum{Name: rep.Name, Size: rep.Block.Size, Converged: true}
		if rep.Top != nil {
			bs.TopEigenvalues = rep.Top.Values()
			bs.Converged = bs.Converged && rep.Top.Converged
		}
		if rep.Bottom != nil && len(rep.Bottom.Pairs) > 0 {
			bs.MinEigenvalue = rep.Bottom.Pairs[0].Value
			bs.Converged = bs.Converged && rep.Bottom.Converged
		}
		if rep.Trace != nil {
			bs.Trace, bs.TraceStdErr, bs.TraceSamples = rep.Trace.Mean, rep.Trace.StdErr, rep.Trace.N()
		}
		out.Blocks = append(out.Blocks, bs)
		if w != nil {
			fmt.Fprintf(w, "%-14s d=%-7d top %v  min %.4g  trace %.4g ± %.2g (converged %v)\n",
				bs.Name, bs.Size, fmtFloats(bs.TopEigenvalues), bs.MinEigenvalue, bs.Trace, bs.TraceStdErr, bs.Converged)
		}
	}
	if reports[0].Density != nil {
		dens, err := reports[0].Density.Density(spectrum.DensityConfig{Points: 2000, SigmaSquared: 1e-5, Pad: 0.01})
		if err != nil {
			return nil, fmt.Errorf("analyze: %w", err)
		}
		out.Density.X, out.Density.Y = dens.X, dens.Y
		curve := spectrum.Curve{Label: "model", Density: dens}
		opts := spectrum.PlotOptions{Title: fmt.Sprintf("Hessian eigenvalue density (step %d)", ck.Step), LogY: true}
		for _, ext := range []string{"png", "svg"} {
			if err := spectrum.WriteDensityPlot(filepath.Join(cfg.OutDir, "density."+ext), opts, curve); err != nil {
				return nil, fmt.Errorf("analyze: %w", err)
			}
		}
	}
	if err := writeJSONAtomic(filepath.Join(cfg.OutDir, "spectrum.json"), out); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	if w != nil {
		fmt.Fprintf(w, "wrote %s, density.png and density.svg in %s\n", "spectrum.json", cfg.OutDir)
	}
	return out, nil
}

type heldBatch struct {
	x      *tensor.Dense
	labels []int
}

// fixedBatches copies the first n batches of the training split in dataset
// order (no shuffling, no augmentation).
func fixedBatches(r *run, n int) ([]heldBatch, error) {
	it, err := data.NewIterator(r.it.Dataset(), data.IterConfig{BatchSize: r.cfg.BatchSize, DropLast: true, Dtype: r.cfg.Dtype, Norm: r.norm})
	if err != nil {
		return nil, err
	}
	var out []heldBatch
	for len(out) < n && it.Next() {
		b := it.Batch()
		x, labels := b.X, b.Labels
		if r.text {
			var tb textBatch
			if x, labels, err = tb.fill(r.it.Dataset(), b, r.cfg.Dtype); err != nil {
				return nil, err
			}
		}
		out = append(out, heldBatch{x: x.Clone().(*tensor.Dense), labels: append([]int(nil), labels...)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no full batch of %d", r.it.Dataset().Name, r.cfg.BatchSize)
	}
	return out, nil
}

func fmtFloats(xs []float64) string {
	s := "["
	for i, x := range xs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.4g", x)
	}
	return s + "]"
}
