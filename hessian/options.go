package hessian

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
)

// Option configures an Engine.
type Option func(*config) error

type config struct {
	probes   optim.ProbeSource
	sampler  nn.LabelSampler
	gnbBatch int
	graphs   int
	tape     bool // gorgonia's tape machine instead of vm.Machine (withTapeMachine)
	poison   bool // vm.WithPoison (withPoison)
}

// withTapeMachine runs the graphs on gorgonia's tape machine, which keeps
// every op's output alive, instead of vm.Machine: the reference the
// machine's tests compare with.
func withTapeMachine() Option {
	return func(c *config) error {
		c.tape = true
		return nil
	}
}

// withPoison makes vm.Machine fill every buffer with NaN before its op
// writes it (vm.WithPoison): for tests.
func withPoison() Option {
	return func(c *config) error {
		c.poison = true
		return nil
	}
}

// DefaultGraphCache is the number of batch sizes whose compiled graphs an
// engine keeps, for training and for evaluation each (see WithGraphCache).
const DefaultGraphCache = 4

// WithGraphCache bounds the compiled graphs an engine from New keeps to
// those of the n ≥ 1 most recently used batch sizes, for training and for
// evaluation each (default DefaultGraphCache). A run uses one training and
// one evaluation batch size, plus a last partial batch of each, so the
// default compiles each graph once; a batch size evicted from the cache is
// compiled again when it returns.
func WithGraphCache(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("hessian: WithGraphCache(%d): want n ≥ 1", n)
		}
		c.graphs = n
		return nil
	}
}

// WithProbes sets the probe source Hutchinson draws z from (default:
// Rademacher probes seeded with 1).
func WithProbes(src optim.ProbeSource) Option {
	return func(c *config) error {
		if src == nil {
			return errors.New("hessian: WithProbes(nil)")
		}
		c.probes = src
		return nil
	}
}

// WithSampler sets the sampler that draws labels from the model's softmax
// for SampledGrad (default: RandSampler seeded with 1).
func WithSampler(s nn.LabelSampler) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("hessian: WithSampler(nil)")
		}
		c.sampler = s
		return nil
	}
}

// WithRand makes SampledGrad draw labels with r (a RandSampler).
func WithRand(r *rand.Rand) Option {
	return func(c *config) error {
		if r == nil {
			return errors.New("hessian: WithRand(nil)")
		}
		c.sampler = RandSampler{R: r}
		return nil
	}
}

// WithGNBBatch makes SampledGrad use only the first n inputs of the current
// batch, as Sophia's paper computes the Gauss-Newton-Bartlett estimate on a
// sub-batch: the result is then the gradient of the mean cross-entropy over
// their rows of logits (n, or n·T for a sequence model with T rows per
// input) against labels sampled from their softmax, and SophiaG's
// BatchSize (bs) should be n, not the training batch size. The sampler sees
// those rows. Every batch given to SetBatch must have at least n inputs.
//
// On an engine from New the sampled gradient runs on its own graph of n
// rows, compiled once at the first SetBatch, so it costs a forward and a
// backward pass over n rows only (with batch norm, its statistics are those
// of the n rows). On an engine from NewGraph, whose one graph has a fixed
// batch size, the first n inputs' rows of the logits are selected inside
// that graph: the estimate is the same for a graph whose rows do not
// interact, but the pass still runs over the whole batch.
func WithGNBBatch(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("hessian: WithGNBBatch(%d): want n ≥ 1", n)
		}
		c.gnbBatch = n
		return nil
	}
}
