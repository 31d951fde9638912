package train

import (
	"fmt"
	"slices"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/meminfo"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/mfac"
	"gorgonia.org/tensor"
)

// checkInputs checks, before the engine, the optimizer's buffers or the
// batches are allocated and before the first step, that both splits fit
// the model and each other (text windows of its context for a token model:
// text), that the batch sizes fit the data, and that the optimizer's state
// fits in the memory the machine has.
func checkInputs(cfg Config, model *nn.Model, text bool, needs optim.Needs, trainDS, testDS *data.Dataset) error {
	if err := data.CheckSplits(trainDS, testDS); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	ex := model.InputShape()
	for _, d := range []*data.Dataset{trainDS, testDS} {
		img := []int{d.C, d.H, d.W}
		if text {
			if err := checkTextData(cfg.Model, d); err != nil {
				return err
			}
		} else if len(ex) == 3 && !slices.Equal(ex, img) || prod(ex) != d.ImageSize() {
			return fmt.Errorf("train: the model takes inputs of shape %v (%d values) but %s has %dx%dx%d images (%d values)",
				ex, prod(ex), d.Name, d.C, d.H, d.W, d.ImageSize())
		}
	}
	if model.Classes() < trainDS.Classes {
		return fmt.Errorf("train: the model has %d outputs but %s has %d classes", model.Classes(), trainDS.Name, trainDS.Classes)
	}
	if cfg.BatchSize > trainDS.Len() {
		return fmt.Errorf("train: batch size %d exceeds the %d images of %s: at most %d (-batch)", cfg.BatchSize, trainDS.Len(), trainDS.Name, trainDS.Len())
	}
	if cfg.GNBBatch > 0 && !needs.SampledGrad {
		return fmt.Errorf("train: GNB batch %d: optimizer %s does not use the GNB (sampled-label) estimate; only sophiag does", cfg.GNBBatch, cfg.Optimizer)
	}
	if cfg.Optimizer == "mfac" {
		d := 0
		for _, p := range model.ParamInfo() {
			d += prod(p.Shape)
		}
		m := windowSize(cfg.Hyper)
		live, export := mfacBytes(m, d, cfg.Dtype)
		what := fmt.Sprintf("M-FAC's window of m = %d gradients of d = %d parameters (%v: %s, and %s more for a checkpoint)",
			m, d, cfg.Dtype, meminfo.Bytes(live), meminfo.Bytes(export))
		if n := commSize(cfg); cfg.Shard && n > 1 {
			// This rank's columns: d/n, and at most half a kernel window
			// more where a cut moved (shardCuts).
			dr := (d+n-1)/n + maxBlock(model)
			live, export = mfacBytes(m, dr, cfg.Dtype)
			if cfg.Comm.Rank() == 0 { // gathers the whole window to write a checkpoint
				full, _ := mfacBytes(m, d, cfg.Dtype)
				export = meminfo.Add(export, full)
			}
			what = fmt.Sprintf("this rank's slice of M-FAC's window (-shard: m = %d gradients of %d of the d = %d parameters; %v: %s, and %s more for a checkpoint)",
				m, dr, d, cfg.Dtype, meminfo.Bytes(live), meminfo.Bytes(export))
		}
		src, budget := cfg.budget()
		if err := src.CheckAgainst(budget, what, meminfo.Add(live, export), "lower the window size (-ngrads)"); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	return nil
}

// modelCopies is how many parameter-sized buffers a run holds at the
// least: the values, the gradient, a curvature or update buffer and two
// optimizer moments.
const modelCopies = 5

// checkModelSize checks, before the model is allocated, that its
// parameters fit in the available memory modelCopies times over.
func checkModelSize(cfg Config) error {
	info, err := cfg.Model.Check()
	if err != nil {
		return fmt.Errorf("train: model: %w", err)
	}
	d := countParams(info)
	size := int64(4)
	if cfg.Dtype == tensor.Float64 {
		size = 8
	}
	what := fmt.Sprintf("a model of %d parameters (%v, %d copies: values, gradient, curvature buffer, optimizer moments)", d, cfg.Dtype, modelCopies)
	// Against the machine: the model's memory under -memory-limit is
	// checkModelMemory's, which counts the graphs as well.
	if err := meminfo.Source(cfg.Memory).Check(what, meminfo.Mul(meminfo.Mul(d, size), modelCopies), "use a smaller model (-hidden, -model)"); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// windowSize is M-FAC's window size m: h's ngrads or the default.
func windowSize(h Hyper) int {
	r, err := ResolveHyper("mfac", h, 1, 0)
	if m, ok := r["ngrads"].(int); err == nil && ok && m >= 1 {
		return m
	}
	return mfac.Default().NGrads
}

// mfacBytes estimates M-FAC's memory for a window of m gradients of d
// parameters: live, the window (m·d values of the dtype, once the run has
// written all m rows) and its three m×m float64 matrices (Gram, factor,
// refactorisation workspace); export, what a checkpoint adds: the copies of
// the Gram matrix and factor that the reader holds while a run resumes.
// Neither direction copies the window: saving streams the rows written
// (k ≤ m: k·d values on disk) from the live buffer, and resuming reads them
// into the buffer the run keeps (mfac.MFAC.Reserve), whose unwritten rows
// are not touched; saving streams the matrices too.
// Both saturate at math.MaxInt64.
func mfacBytes(m, d int, dt tensor.Dtype) (live, export int64) {
	size := int64(4)
	if dt == tensor.Float64 {
		size = 8
	}
	md := meminfo.Mul(int64(m), int64(d))
	mm := meminfo.Mul(int64(m), int64(m))
	live = meminfo.Add(meminfo.Mul(md, size), meminfo.Mul(mm, 3*8))
	export = meminfo.Mul(mm, 2*8)
	return live, export
}

// budget is the memory that the checks of the model's graphs and M-FAC's
// window are made against, and its name in their errors:
// Config.MemoryLimit (-memory-limit) when set, else Config.Memory
// (MemAvailable).
func (c Config) budget() (meminfo.Source, string) {
	if c.MemoryLimit > 0 {
		return meminfo.Fixed(c.MemoryLimit), "-memory-limit"
	}
	return meminfo.Source(c.Memory), "MemAvailable"
}

// paramCount is the number of the model's parameters (0 if its
// description does not check: setup has refused it already).
func paramCount(cfg Config) int64 {
	info, err := cfg.Model.Check()
	if err != nil {
		return 0
	}
	return countParams(info)
}

// countParams is the number of values in the parameters of info,
// saturating at math.MaxInt64.
func countParams(info []nn.ParamInfo) int64 {
	var d int64
	for _, p := range info {
		n := int64(1)
		for _, s := range p.Shape {
			n = meminfo.Mul(n, int64(s))
		}
		d = meminfo.Add(d, n)
	}
	return d
}

// commSize is the number of ranks of cfg's run (1 without a Comm).
func commSize(cfg Config) int {
	if cfg.Comm == nil {
		return 1
	}
	return cfg.Comm.Size()
}

// maxBlock is the largest kernel window (adahessian.BlockSize) of the
// model's parameters: how far shardCuts may move a cut.
func maxBlock(model *nn.Model) int {
	b := 1
	for _, p := range model.ParamInfo() {
		b = max(b, adahessian.BlockSize(p.Shape))
	}
	return b
}
