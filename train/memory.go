package train

// The memory budget of a run's model: its parameters and the graphs the
// engine compiles, estimated from shapes (nn.DAG.Memory)
// and checked before the model or the engine is built.

import (
	"fmt"
	"strings"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/meminfo"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
)

// graphUse is one graph a run compiles: what it is for, its kind and its
// batch size.
type graphUse struct {
	what  string
	kind  nn.GraphKind
	batch int
}

// runGraphs lists the graphs a run with these needs compiles for splits of
// trainLen and testLen examples (the engine keeps them all: one per batch
// size and kind, see hessian.WithGraphCache). An analysis (Analyze) builds
// only the training graph of its fixed full batches. A batch larger than
// the training split lists nothing: checkInputs refuses it.
func runGraphs(cfg Config, needs optim.Needs, analysis bool, trainLen, testLen int) []graphUse {
	kind := nn.GradGraph
	if needs.HVP {
		kind = nn.HVPGraph
	}
	b := cfg.BatchSize
	if b > trainLen || testLen < 1 {
		return nil
	}
	gs := []graphUse{{"training batch", kind, b}}
	if r := trainLen % b; !analysis && r != 0 && !cfg.DropLast && cfg.GNBBatch == 0 {
		gs = append(gs, graphUse{"last training batch", kind, r})
	}
	if needs.SampledGrad {
		if cfg.GNBBatch > 0 {
			gs = append(gs, graphUse{"GNB sub-batch", nn.GradGraph, cfg.GNBBatch})
		} else {
			// The sampled-label gradient is a second backward pass in the
			// training graph: bounded by a gradient graph of the batch.
			gs = append(gs, graphUse{"sampled-label batch", nn.GradGraph, b})
		}
	}
	if analysis {
		return gs
	}
	eb := min(cfg.EvalBatch, testLen)
	gs = append(gs, graphUse{"evaluation batch", nn.EvalGraph, eb})
	if r := testLen % eb; r != 0 {
		gs = append(gs, graphUse{"last evaluation batch", nn.EvalGraph, r})
	}
	return gs
}

// checkModelMemory refuses a run whose model (parameters and the graphs
// runGraphs lists) would not fit in cfg.MemoryLimit or, when that is 0, in
// the memory available (cfg.Memory, by default MemAvailable; skipped when
// unknown). It runs before the model and the engine are allocated; the
// error names the largest layer and its graph and the bytes, and says to
// lower the batch sizes or the model.
func checkModelMemory(cfg Config, needs optim.Needs, analysis bool, trainLen, testLen int) error {
	var params, acts int64
	var largest nn.MemoryEstimate
	var largestIn string
	var parts []string
	for _, g := range runGraphs(cfg, needs, analysis, trainLen, testLen) {
		var e nn.MemoryEstimate
		var err error
		e, err = cfg.Model.Memory(g.batch, cfg.Dtype, g.kind)
		if err != nil {
			return fmt.Errorf("train: model: %w", err)
		}
		params = max(params, e.Params)
		acts = meminfo.Add(acts, e.Activations)
		if e.LargestBytes > largest.LargestBytes || largestIn == "" {
			largest, largestIn = e, fmt.Sprintf("the %s graph of the %s of %d", g.kind, g.what, g.batch)
		}
		parts = append(parts, fmt.Sprintf("%s %d (%s) %s", g.what, g.batch, g.kind, meminfo.Bytes(e.Activations)))
	}
	need := meminfo.Add(params, acts)
	src, _ := cfg.budget()
	budget, err := src.Get()
	if err != nil {
		return nil // no way to know: let the allocation decide
	}
	where := "the memory available (MemAvailable)"
	if cfg.MemoryLimit > 0 {
		where = "the memory limit (-memory-limit)"
	}
	if need <= budget {
		return nil
	}
	msg := fmt.Sprintf("the model's graphs need %s (%s; parameters %s), more than %s, %s; the largest part is %s in %s, %s: lower the batch size (-batch, -eval-batch) or use a smaller model",
		meminfo.Bytes(need), strings.Join(parts, ", "), meminfo.Bytes(params), where, meminfo.Bytes(budget),
		largest.Largest, largestIn, meminfo.Bytes(largest.LargestBytes))
	return fmt.Errorf("train: %w", &meminfo.Error{Need: need, Available: budget, Msg: msg})
}

// splitSizes returns the sizes of the training and test splits when they
// are known before loading: given datasets, or synthetic ones of explicit
// sizes.
func splitSizes(cfg Config) (trainLen, testLen int, ok bool) {
	if cfg.Train != nil && cfg.Test != nil {
		return cfg.Train.Len(), cfg.Test.Len(), true
	}
	s := cfg.Data.Synthetic
	if (cfg.Data.Kind == "" || cfg.Data.Kind == data.KindSynthetic) && s.Train > 0 && s.Test > 0 {
		return s.Train, s.Test, true
	}
	return 0, 0, false
}

// runNeeds returns the curvature queries a run's engine answers: the
// optimizer's, with H·v for sharpness tracking and analysis. It builds a
// throwaway optimizer (cheap: optimizers allocate their state at their
// first step); an error is the optimizer's.
func runNeeds(cfg Config, analysis bool) (optim.Needs, error) {
	text := cfg.Model.Tokens > 0
	opt, err := NewOptimizer(cfg.Optimizer, cfg.Hyper, predictionsPerBatch(cfg, text), cfg.Seed)
	if err != nil {
		return optim.Needs{}, err
	}
	needs := opt.Needs()
	if cfg.HessianEvery > 0 || analysis {
		needs.HVP = true
	}
	return needs, nil
}
