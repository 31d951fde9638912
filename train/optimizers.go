package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/sgd"
	"github.com/curvopt/curvopt/optim/sophia"
)

// Hyper holds hyperparameter overrides by name; a name that is absent keeps
// the optimizer's documented default (see OptimizerHelp). Names:
//
//	lr, wd                       every optimizer (learning rate, weight decay)
//	momentum, dampening, nesterov  sgd (nesterov: 1 = on); momentum also mfac
//	beta1, beta2, eps            adam, adamw, sophiag, sophiah, adahessian
//	rho, bs, k                   sophiag, sophiah (k: Hessian interval)
//	power, k, gnb                adahessian (k: Hessian refresh interval;
//	                             gnb: 1 = the GNB estimator, bs = the batch)
//	m, damp                      mfac (window size, damping)
type Hyper map[string]float64

// Optimizers returns the names NewOptimizer accepts, in the comparison order.
func Optimizers() []string {
	return []string{"sgd", "adam", "adamw", "sophiag", "sophiah", "adahessian", "mfac"}
}

// entry is one optimizer of the registry: the hyperparameters it takes, its
// defaults (for the usage text and the base learning rate), and how to build
// it from the defaults overridden by a Hyper.
type entry struct {
	hypers   []string
	lr, wd   float64
	defaults string
	build    func(h Hyper, batch int, seed uint64) (optim.Optimizer, error)
}

// set overwrites *dst with h[key] when present.
func (h Hyper) set(key string, dst *float64) {
	if v, ok := h[key]; ok {
		*dst = v
	}
}

// isIntHyper reports whether the hyperparameter counts something (window
// size, interval, predictions); NewOptimizer refuses fractions for these
// rather than truncating them.
func isIntHyper(k string) bool { return k == "m" || k == "k" || k == "bs" }

// setInt overwrites *dst with h[key] when present (NewOptimizer has checked
// that it is a whole number).
func (h Hyper) setInt(key string, dst *int) {
	if v, ok := h[key]; ok {
		*dst = int(v)
	}
}

// setMoments overrides the hyperparameters the Adam-like optimizers share.
func (h Hyper) setMoments(lr, beta1, beta2, eps, wd *float64) {
	h.set("lr", lr)
	h.set("beta1", beta1)
	h.set("beta2", beta2)
	h.set("eps", eps)
	h.set("wd", wd)
}

func registry(name string) (entry, bool) {
	switch name {
	case "sgd":
		c := sgd.Default()
		return entry{
			hypers: []string{"lr", "momentum", "dampening", "nesterov", "wd"},
			lr:     c.LR, wd: c.WeightDecay,
			defaults: fmt.Sprintf("lr %g, momentum %g, dampening %g, nesterov %v, wd %g (coupled L2)", c.LR, c.Momentum, c.Dampening, c.Nesterov, c.WeightDecay),
			build: func(h Hyper, _ int, _ uint64) (optim.Optimizer, error) {
				h.set("lr", &c.LR)
				h.set("momentum", &c.Momentum)
				h.set("dampening", &c.Dampening)
				h.set("wd", &c.WeightDecay)
				if v, ok := h["nesterov"]; ok {
					c.Nesterov = v != 0
				}
				return sgd.New(c)
			},
		}, true
	case "adam", "adamw":
		c, kind := adam.Default(), "coupled L2"
		if name == "adamw" {
			c, kind = adam.DefaultW(), "decoupled"
		}
		return entry{
			hypers: []string{"lr", "beta1", "beta2", "eps", "wd"},
			lr:     c.LR, wd: c.WeightDecay,
			defaults: fmt.Sprintf("lr %g, beta1 %g, beta2 %g, eps %g, wd %g (%s)", c.LR, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, kind),
			build: func(h Hyper, _ int, _ uint64) (optim.Optimizer, error) {
				h.setMoments(&c.LR, &c.Beta1, &c.Beta2, &c.Eps, &c.WeightDecay)
				return adam.New(c)
			},
		}, true
	case "sophiag", "sophiah":
		c, desc := sophia.DefaultG(), ""
		if name == "sophiah" {
			c = sophia.DefaultH()
			desc = fmt.Sprintf("lr %g, beta1 %g, beta2 %g, rho %g, wd %g (decoupled), bs %d, k %d, eps %g; Hutchinson estimator", c.LR, c.Beta1, c.Beta2, c.Rho, c.WeightDecay, c.BatchSize, c.Interval, c.Eps)
		} else {
			desc = fmt.Sprintf("lr %g, beta1 %g, beta2 %g, rho %g, wd %g (decoupled), bs = batch size, k %d, eps %g; GNB estimator", c.LR, c.Beta1, c.Beta2, c.Rho, c.WeightDecay, c.Interval, c.Eps)
		}
		return entry{
			hypers: []string{"lr", "beta1", "beta2", "eps", "wd", "rho", "bs", "k"},
			lr:     c.LR, wd: c.WeightDecay,
			defaults: desc,
			build: func(h Hyper, batch int, seed uint64) (optim.Optimizer, error) {
				if name == "sophiag" {
					c.BatchSize = batch // predictions per batch (Sophia#48)
				}
				c.Seed = seed
				h.setMoments(&c.LR, &c.Beta1, &c.Beta2, &c.Eps, &c.WeightDecay)
				h.set("rho", &c.Rho)
				h.setInt("bs", &c.BatchSize)
				h.setInt("k", &c.Interval)
				return sophia.New(c)
			},
		}, true
	case "adahessian":
		c := adahessian.Default()
		return entry{
			hypers: []string{"lr", "beta1", "beta2", "eps", "wd", "power", "k", "gnb"},
			lr:     c.LR, wd: c.WeightDecay,
			defaults: fmt.Sprintf("lr %g, beta1 %g, beta2 %g, eps %g, wd %g, power %g, k %d (Hessian every k steps)", c.LR, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, c.HessianPower, c.Interval),
			build: func(h Hyper, batch int, seed uint64) (optim.Optimizer, error) {
				c.Seed = seed
				if h["gnb"] != 0 { // the diagonal estimator: GNB instead of Hutchinson
					c.Estimator, c.BatchSize = adahessian.GNB, batch
				}
				h.setMoments(&c.LR, &c.Beta1, &c.Beta2, &c.Eps, &c.WeightDecay)
				h.set("power", &c.HessianPower)
				h.setInt("k", &c.Interval)
				return adahessian.New(c)
			},
		}, true
	case "mfac":
		c := mfac.Default()
		return entry{
			hypers: []string{"lr", "momentum", "wd", "m", "damp"},
			lr:     c.LR, wd: c.WeightDecay,
			defaults: fmt.Sprintf("lr %g, momentum %g, wd %g (coupled L2), m %d gradients, damp %g", c.LR, c.Momentum, c.WeightDecay, c.NGrads, c.Damp),
			build: func(h Hyper, _ int, _ uint64) (optim.Optimizer, error) {
				h.set("lr", &c.LR)
				h.set("momentum", &c.Momentum)
				h.set("wd", &c.WeightDecay)
				h.set("damp", &c.Damp)
				h.setInt("m", &c.NGrads)
				return mfac.New(c)
			},
		}, true
	}
	return entry{}, false
}

// NewOptimizer builds the named optimizer from its defaults overridden by h.
// batch is the number of predictions per batch (Sophia's bs defaults to it,
// Sophia#48) and seed seeds any random probes. A hyperparameter the
// optimizer does not take is an error naming it.
func NewOptimizer(name string, h Hyper, batch int, seed uint64) (optim.Optimizer, error) {
	e, ok := registry(name)
	if !ok {
		return nil, fmt.Errorf("unknown optimizer %q (want one of %s)", name, strings.Join(Optimizers(), ", "))
	}
	for k, v := range h {
		if !contains(e.hypers, k) {
			return nil, fmt.Errorf("optimizer %s has no hyperparameter %q (it takes %s)", name, k, strings.Join(e.hypers, ", "))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("optimizer %s: hyperparameter %s = %v: must be finite", name, k, v)
		}
		if isIntHyper(k) && (v != math.Trunc(v) || math.Abs(v) > math.MaxInt32) {
			return nil, fmt.Errorf("optimizer %s: hyperparameter %s = %v: must be a whole number", name, k, v)
		}
	}
	return e.build(h, batch, seed)
}

// OptimizerHelp describes every optimizer's hyperparameters and defaults,
// for a command line's usage text.
func OptimizerHelp() string {
	var b strings.Builder
	for _, n := range Optimizers() {
		e, _ := registry(n)
		fmt.Fprintf(&b, "  %-11s %s\n", n, e.defaults)
	}
	return b.String()
}

// BaseLR returns the learning rate the named optimizer starts from: h["lr"]
// if set, else its default. Schedules multiply it.
func BaseLR(name string, h Hyper) float64 {
	if v, ok := h["lr"]; ok {
		return v
	}
	e, _ := registry(name)
	return e.lr
}

// BaseWD returns the weight decay the named optimizer uses: h["wd"] if set,
// else its default. The default parameter groups apply it to weight
// matrices and kernels only (Config.DecayAll).
func BaseWD(name string, h Hyper) float64 {
	if v, ok := h["wd"]; ok {
		return v
	}
	e, _ := registry(name)
	return e.wd
}

// HyperNames returns the hyperparameter names the optimizer accepts.
func HyperNames(name string) []string {
	e, _ := registry(name)
	return e.hypers
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
