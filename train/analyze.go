package train

import (
	"context"
	"errors"
	"fmt"
	"github.com/curvopt/curvopt/internal/num"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/internal/meminfo"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
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
	// TraceMethod is the trace estimator: spectrum.MethodHutchinson (also
	// when empty) or spectrum.MethodHutchPP.
	TraceMethod spectrum.TraceMethod
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
	// Method is "lanczos" (Lanczos and Hutchinson on products) or "dense"
	// (a small block assembled from Size products and diagonalised: exact).
	Method string `json:"method"`
	// Products is the number of Hessian-vector products (each over all the
	// batches) the block cost, and Seconds their wall time.
	Products int     `json:"products"`
	Seconds  float64 `json:"seconds"`
}

// Analysis is what Analyze writes to spectrum.json.
type Analysis struct {
	// Checkpoint is the checkpoint's file name in the output directory.
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

// denseMax is the largest parameter block that Analyze assembles densely:
// n products give its exact eigenvalues and trace, no more than Lanczos at
// both ends plus Hutchinson take (about 35 products for a block).
const denseMax = 32

// Analyze loads OutDir/checkpoint.gob (the model spec and dtype come from
// the checkpoint; the dataset, batch size, normalisation and seed from cfg,
// see ReadRunConfig), builds the Hessian of the training loss averaged over
// ac.Batches batches, and writes spectrum.json (top and bottom eigenvalues
// by Lanczos, Hutchinson trace, for the model and optionally per parameter)
// and the eigenvalue density (stochastic Lanczos quadrature) to OutDir;
// drawing the density is left to the caller (cmd/train writes density.png
// and density.svg with hessian/spectrum/plot), so that train does not
// depend on plotting.
// Progress goes to w (nil: none): one line per finished quantity, and on a
// terminal (cfg.Terminal) a running count of products.
//
// Per parameter, only the diagonal block H_bb is analysed (each of its
// products costs a full one): blocks of at most 32 values are assembled
// densely and diagonalised, which is exact and cheaper than the iterative
// estimates; larger ones get their smallest eigenvalue to 1e-3·‖H_bb‖ and
// their trace to 10% (see blockPrecision); no density is computed per
// block. On the default CNN (60,362 parameters in six tensors) the model
// takes about 190 products and the blocks about 400 more.
//
// Cancelling ctx stops the analysis at its next Hessian-vector product (at
// the latest before the next batch of one) or before spectrum.json is
// written: the error wraps ctx's error and nothing is written, not even a
// temporary file.
func Analyze(ctx context.Context, cfg Config, ac AnalyzeConfig, w io.Writer) (*Analysis, error) {
	if ctx == nil {
		return nil, errors.New("train: analyze: nil context")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("train: analyze: not started: %w", err)
	}
	a, err := analyze(ctx, cfg, ac, w)
	if cause := ctx.Err(); err != nil && cause != nil && errors.Is(err, cause) {
		return nil, fmt.Errorf("train: analyze: stopped before the end, nothing written: %w", cause)
	}
	return a, err
}

// analyze is Analyze; a cancellation comes out of it as some wrapping of
// ctx's error.
func analyze(ctx context.Context, cfg Config, ac AnalyzeConfig, w io.Writer) (*Analysis, error) {
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
		return nil, fmt.Errorf("train: analyze: batches %d, top %d, SLQ steps %d and probes %d must be positive (SLQ steps >= 2)", ac.Batches, ac.Top, ac.SLQSteps, ac.Probes)
	}
	if m := ac.TraceMethod; m != "" && m != spectrum.MethodHutchinson && m != spectrum.MethodHutchPP {
		return nil, fmt.Errorf("train: analyze: trace method %q: want %q or %q", m, spectrum.MethodHutchinson, spectrum.MethodHutchPP)
	}
	if cfg.OutDir == "" {
		return nil, errors.New("train: analyze: no output directory holding a checkpoint")
	}
	path := filepath.Join(cfg.OutDir, checkpointFile)
	ck, err := readCheckpoint(path, true, meminfo.Source(cfg.Memory), nil)
	if err != nil {
		return nil, fmt.Errorf("train: analyze: %w", err)
	}
	if err := checkpointModel(&cfg, ck.Model, path); err != nil {
		return nil, err
	}
	switch ck.Dtype {
	case "float64":
		cfg.Dtype = tensor.Float64
	case "float32":
		cfg.Dtype = tensor.Float32
	default:
		return nil, fmt.Errorf("train: analyze: %s: unknown dtype %q", path, ck.Dtype)
	}
	// Only the parameters are loaded: the optimizer, its state and the
	// training schedule play no part (SGD with its defaults stands in).
	cfg.Optimizer, cfg.Hyper, cfg.GNBBatch = "sgd", nil, 0
	cfg.Resume, cfg.HessianEvery, cfg.Augment, cfg.Schedule = false, 0, data.Augment{}, Schedule{}
	r, err := setup(cfg, false)
	if err != nil {
		return nil, err
	}
	defer r.close()
	if err := loadWeights(r, ck, path); err != nil {
		return nil, err
	}

	batches, err := fixedBatches(r, ac.Batches)
	if err != nil {
		return nil, fmt.Errorf("train: analyze: %w", err)
	}
	sweep, err := spectrum.NewSweep(r.eng, len(batches), func(i int) (float64, error) {
		if err := ctx.Err(); err != nil { // every product runs through here, batch by batch
			return 0, err
		}
		return float64(len(batches[i].labels)), r.eng.SetBatch(batches[i].x, batches[i].labels)
	})
	if err != nil {
		return nil, fmt.Errorf("train: analyze: %w", err)
	}
	an := &analyzer{cfg: ac, rng: rand.New(rand.NewPCG(cfg.Seed, 0xa11a)),
		prog: newAnalysisProgress(w, cfg.Terminal)}
	out := &Analysis{Checkpoint: filepath.Base(path), Step: ck.Step, Batches: len(batches), BatchSize: cfg.BatchSize}
	an.prog.printf("analysing %s (step %d, %d parameters) on %d batches of %d of %s\n",
		path, ck.Step, r.eng.Dim(), len(batches), cfg.BatchSize, r.it.Dataset().Name)

	model, dens, err := an.model(sweep)
	if err != nil {
		return nil, err
	}
	out.Blocks = append(out.Blocks, model)
	if ac.PerLayer {
		for _, b := range r.eng.ParamBlocks() {
			op, err := spectrum.NewBlockOperator(sweep, b)
			if err != nil {
				return nil, fmt.Errorf("train: analyze: %w", err)
			}
			bs, err := an.block(b.Name, op)
			if err != nil {
				return nil, err
			}
			out.Blocks = append(out.Blocks, bs)
		}
	}
	out.Problems = an.problems
	for _, bs := range out.Blocks {
		an.prog.printf("%-14s d=%-7d top %v  min %.4g  trace %.4g ± %.2g (%s, converged %v, %d products, %.0f s)\n",
			bs.Name, bs.Size, fmtFloats(bs.TopEigenvalues), bs.MinEigenvalue, bs.Trace, bs.TraceStdErr,
			bs.Method, bs.Converged, bs.Products, bs.Seconds)
	}
	if dens != nil {
		d, err := dens.Density(spectrum.DensityConfig{Points: 2000, SigmaSquared: 1e-5, Pad: 0.01})
		if err != nil {
			return nil, fmt.Errorf("train: analyze: %w", err)
		}
		out.Density.X, out.Density.Y = d.X, d.Y
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := writeJSONAtomic(filepath.Join(cfg.OutDir, "spectrum.json"), out); err != nil {
		return nil, fmt.Errorf("train: analyze: %w", err)
	}
	an.prog.printf("wrote spectrum.json in %s (%.0f s)\n", cfg.OutDir, time.Since(an.prog.start).Seconds())
	return out, nil
}

// checkpointModel sets cfg's model to the checkpoint's (key, recorded as
// JSON, converted as on resume: see modelKey).
func checkpointModel(cfg *Config, key, path string) error {
	d, err := nn.ParseModel([]byte(key))
	if err != nil {
		return fmt.Errorf("train: analyze: %s: the checkpoint's model: %w", path, err)
	}
	cfg.Model = d
	return nil
}

// analyzer computes the quantities of one analysis, in a fixed order from
// one generator (so a rerun gives the same numbers), and collects the
// estimates that did not converge.
type analyzer struct {
	cfg      AnalyzeConfig
	rng      *rand.Rand
	prog     *analysisProgress
	problems []string
}

// soft keeps a non-convergence as a problem and returns any other error.
func (a *analyzer) soft(name, what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, spectrum.ErrNotConverged) {
		a.problems = append(a.problems, fmt.Sprintf("%s %s: %v", name, what, err))
		return nil
	}
	return fmt.Errorf("train: analyze: %s %s: %w", name, what, err)
}

// precision sets the tolerances of one target's estimates.
type precision struct {
	top, bottom spectrum.LanczosConfig
	trace       spectrum.TraceConfig
}

// modelPrecision is for the whole Hessian (the package defaults aim at
// 1e-10 residuals, which a 60k-parameter model only reaches after hundreds
// of products): eigenvalues to ~1e-8 relative with residuals below
// 1e-6·‖H‖, the trace to a standard error of 5% of max(|trace|, ‖H‖_F).
func modelPrecision(k int) precision {
	return precision{
		top:    spectrum.LanczosConfig{K: k, Which: spectrum.LargestAlgebraic, MaxIter: 200, Tol: 1e-8, ResidualTol: 1e-6},
		bottom: spectrum.LanczosConfig{K: 1, Which: spectrum.SmallestAlgebraic, MaxIter: 200, Tol: 1e-8, ResidualTol: 1e-6},
		trace:  spectrum.TraceConfig{MinSamples: 10, MaxSamples: 100, Tol: 0.05},
	}
}

// blockPrecision is for a parameter's block, where every product costs a
// full one. The top eigenvalues as for the model (they converge in about
// 20 products). The smallest eigenvalue is decided by its residual alone,
// below 1e-3·‖H_bb‖ (an eigenvalue lies that close to it): a layer's block
// of a piecewise-linear network is positive semi-definite with a large
// null space, its smallest eigenvalue is 0, and Lanczos's other test, a
// change of at most Tol·|θ| between checks, cannot pass at θ ≈ 0 before
// the Krylov space holds the null space exactly (about 150 products per
// block of the default CNN). The trace to a 10% relative standard error
// (a quarter of the probes of 5%).
func blockPrecision(k int) precision {
	p := modelPrecision(k)
	p.bottom.Tol, p.bottom.ResidualTol = math.MaxFloat64, 1e-3
	p.trace.Tol = 0.1
	return p
}

// model analyses the whole Hessian: top and bottom eigenvalues, trace and
// the SLQ quadrature for the density.
func (a *analyzer) model(op spectrum.Operator) (BlockSpectrum, *spectrum.SLQResult, error) {
	d := op.Dim()
	bs, err := a.iterative("model", op, modelPrecision(min(a.cfg.Top, d)))
	if err != nil {
		return bs, nil, err
	}
	m := a.prog.meter("model", "density (SLQ)", op)
	slq, err := spectrum.SLQ(m, spectrum.SLQConfig{Probes: a.cfg.Probes, Steps: min(a.cfg.SLQSteps, d)}, a.rng)
	a.prog.finish(m, "%d probes × %d steps", a.cfg.Probes, min(a.cfg.SLQSteps, d))
	bs.Products += m.n
	bs.Seconds += m.seconds()
	if err := a.soft("model", "density", err); err != nil {
		return bs, nil, err
	}
	return bs, slq, nil
}

// block analyses one parameter's diagonal block: densely when it is small,
// else iteratively.
func (a *analyzer) block(name string, op spectrum.Operator) (BlockSpectrum, error) {
	d := op.Dim()
	if d > denseMax {
		return a.iterative(name, op, blockPrecision(min(a.cfg.Top, d)))
	}
	m := a.prog.meter(name, "dense block", op)
	h, err := spectrum.BuildDense(m, 1e-3)
	var eig *spectrum.Eigen
	if err == nil {
		eig, err = h.Eigen()
	}
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return BlockSpectrum{}, err // stopped, not failed
	}
	if err != nil {
		a.prog.finish(m, "failed (%v); Lanczos instead", err)
		return a.iterative(name, op, blockPrecision(min(a.cfg.Top, d)))
	}
	bs := BlockSpectrum{Name: name, Size: d, Method: "dense", Converged: true,
		TopEigenvalues: eig.Top(min(a.cfg.Top, d)), MinEigenvalue: eig.Min(), Trace: h.Trace(),
		Products: m.n, Seconds: m.seconds()}
	a.prog.finish(m, "top %s, min %.4g, trace %.4g (exact)", fmtFloats(bs.TopEigenvalues), bs.MinEigenvalue, bs.Trace)
	return bs, nil
}

// iterative estimates the top and bottom eigenvalues by Lanczos and the
// trace by Hutchinson, to precision p.
func (a *analyzer) iterative(name string, op spectrum.Operator, p precision) (BlockSpectrum, error) {
	d := op.Dim()
	bs := BlockSpectrum{Name: name, Size: d, Method: "lanczos", Converged: true}
	add := func(m *meteredOp) {
		bs.Products += m.n
		bs.Seconds += m.seconds()
	}

	m := a.prog.meter(name, "top eigenvalues", op)
	top, err := spectrum.Lanczos(m, p.top, a.rng)
	add(m)
	if err := a.soft(name, "top eigenvalues", err); err != nil {
		return bs, err
	}
	bs.TopEigenvalues, bs.Converged = top.Values(), top.Converged
	a.prog.finish(m, "%s (converged %v)", fmtFloats(bs.TopEigenvalues), top.Converged)

	m = a.prog.meter(name, "smallest eigenvalue", op)
	bottom, err := spectrum.Lanczos(m, p.bottom, a.rng)
	add(m)
	if err := a.soft(name, "bottom eigenvalues", err); err != nil {
		return bs, err
	}
	if len(bottom.Pairs) > 0 {
		bs.MinEigenvalue = bottom.Pairs[0].Value
	}
	bs.Converged = bs.Converged && bottom.Converged
	a.prog.finish(m, "%.4g (converged %v)", bs.MinEigenvalue, bottom.Converged)

	m = a.prog.meter(name, "trace", op)
	tc := p.trace
	tc.Method = a.cfg.TraceMethod
	tr, err := spectrum.Trace(m, tc, a.rng)
	add(m)
	if err := a.soft(name, "trace", err); err != nil {
		return bs, err
	}
	bs.Trace, bs.TraceStdErr, bs.TraceSamples = tr.Mean, tr.StdErr, tr.N()
	a.prog.finish(m, "%.4g ± %.2g (%d probes)", tr.Mean, tr.StdErr, tr.N())
	return bs, nil
}

// loadWeights copies the checkpoint's parameter values and batch-norm
// running statistics into the run's model, refusing a checkpoint whose
// parameters differ in name or shape.
func loadWeights(r *run, ck *Checkpoint, path string) error {
	prefix := "train: analyze: " + path
	vals := optim.State{Tensors: ck.Params}
	params := r.eng.Params()
	loaded, err := vals.ImportSlot(prefix, "value", params)
	if err != nil {
		return err
	}
	copies, err := importRunningStats(r.model, vals, prefix)
	if err != nil {
		return err
	}
	for i, p := range params {
		copies = append(copies, tensorCopy{p.Value, loaded[i]})
	}
	for _, c := range copies {
		num.CopyInto(c.dst, c.src)
	}
	return nil
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
