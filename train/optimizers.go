package train

import (
	"fmt"
	"sort"
	"strings"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/adam"
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
//	power, k                     adahessian (k: Hessian refresh interval)
//	m, damp                      mfac (window size, damping)
type Hyper map[string]float64

// Optimizers returns the names NewOptimizer accepts, in the comparison order.
func Optimizers() []string {
	return []string{"sgd", "adam", "adamw", "sophiag", "sophiah", "adahessian", "mfac"}
}

// hyperNames lists the hyperparameters each optimizer accepts.
func hyperNames() map[string][]string {
	return map[string][]string{
		"sgd":        {"lr", "momentum", "dampening", "nesterov", "wd"},
		"adam":       {"lr", "beta1", "beta2", "eps", "wd"},
		"adamw":      {"lr", "beta1", "beta2", "eps", "wd"},
		"sophiag":    {"lr", "beta1", "beta2", "eps", "wd", "rho", "bs", "k"},
		"sophiah":    {"lr", "beta1", "beta2", "eps", "wd", "rho", "bs", "k"},
		"adahessian": {"lr", "beta1", "beta2", "eps", "wd", "power", "k"},
		"mfac":       {"lr", "momentum", "wd", "m", "damp"},
	}
}

// NewOptimizer builds the named optimizer from its defaults overridden by h.
// batch is the training batch size (Sophia's bs defaults to it: the number
// of predictions per batch, Sophia#48) and seed seeds any random probes.
// A hyperparameter the optimizer does not take is an error naming it.
func NewOptimizer(name string, h Hyper, batch int, seed uint64) (optim.Optimizer, error) {
	allowed, ok := hyperNames()[name]
	if !ok {
		return nil, fmt.Errorf("unknown optimizer %q (want one of %s)", name, strings.Join(Optimizers(), ", "))
	}
	for k := range h {
		if !contains(allowed, k) {
			return nil, fmt.Errorf("optimizer %s has no hyperparameter %q (it takes %s)", name, k, strings.Join(allowed, ", "))
		}
	}
	set := func(key string, dst *float64) {
		if v, ok := h[key]; ok {
			*dst = v
		}
	}
	setInt := func(key string, dst *int) {
		if v, ok := h[key]; ok {
			*dst = int(v)
		}
	}
	switch name {
	case "sgd":
		c := sgd.Default()
		set("lr", &c.LR)
		set("momentum", &c.Momentum)
		set("dampening", &c.Dampening)
		set("wd", &c.WeightDecay)
		if v, ok := h["nesterov"]; ok {
			c.Nesterov = v != 0
		}
		return sgd.New(c)
	case "adam", "adamw":
		c := adam.Default()
		if name == "adamw" {
			c = adam.DefaultW()
		}
		set("lr", &c.LR)
		set("beta1", &c.Beta1)
		set("beta2", &c.Beta2)
		set("eps", &c.Eps)
		set("wd", &c.WeightDecay)
		return adam.New(c)
	case "sophiag", "sophiah":
		c := sophia.DefaultG()
		if name == "sophiah" {
			c = sophia.DefaultH()
		} else {
			c.BatchSize = batch
		}
		c.Seed = seed
		set("lr", &c.LR)
		set("beta1", &c.Beta1)
		set("beta2", &c.Beta2)
		set("eps", &c.Eps)
		set("wd", &c.WeightDecay)
		set("rho", &c.Rho)
		setInt("bs", &c.BatchSize)
		setInt("k", &c.Interval)
		return sophia.New(c)
	case "adahessian":
		c := adahessian.Default()
		c.Seed = seed
		set("lr", &c.LR)
		set("beta1", &c.Beta1)
		set("beta2", &c.Beta2)
		set("eps", &c.Eps)
		set("wd", &c.WeightDecay)
		set("power", &c.HessianPower)
		setInt("k", &c.Interval)
		return adahessian.New(c)
	case "mfac":
		return newMFAC(h, set, setInt)
	}
	return nil, fmt.Errorf("unknown optimizer %q", name)
}

// OptimizerHelp describes every optimizer's hyperparameters and defaults,
// for a command line's usage text.
func OptimizerHelp() string {
	var b strings.Builder
	for _, n := range Optimizers() {
		fmt.Fprintf(&b, "  %-11s %s\n", n, defaultsLine(n))
	}
	return b.String()
}

func defaultsLine(name string) string {
	switch name {
	case "sgd":
		c := sgd.Default()
		return fmt.Sprintf("lr %g, momentum %g, dampening %g, nesterov %v, wd %g (coupled L2)", c.LR, c.Momentum, c.Dampening, c.Nesterov, c.WeightDecay)
	case "adam", "adamw":
		c := adam.Default()
		if name == "adamw" {
			c = adam.DefaultW()
		}
		kind := "coupled L2"
		if c.Decoupled {
			kind = "decoupled"
		}
		return fmt.Sprintf("lr %g, beta1 %g, beta2 %g, eps %g, wd %g (%s)", c.LR, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, kind)
	case "sophiag":
		c := sophia.DefaultG()
		return fmt.Sprintf("lr %g, beta1 %g, beta2 %g, rho %g, wd %g (decoupled), bs = batch size, k %d, eps %g; GNB estimator", c.LR, c.Beta1, c.Beta2, c.Rho, c.WeightDecay, c.Interval, c.Eps)
	case "sophiah":
		c := sophia.DefaultH()
		return fmt.Sprintf("lr %g, beta1 %g, beta2 %g, rho %g, wd %g (decoupled), bs %d, k %d, eps %g; Hutchinson estimator", c.LR, c.Beta1, c.Beta2, c.Rho, c.WeightDecay, c.BatchSize, c.Interval, c.Eps)
	case "adahessian":
		c := adahessian.Default()
		return fmt.Sprintf("lr %g, beta1 %g, beta2 %g, eps %g, wd %g, power %g, k %d (Hessian every k steps)", c.LR, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, c.HessianPower, c.Interval)
	case "mfac":
		return mfacDefaultsLine()
	}
	return ""
}

// BaseLR returns the learning rate the named optimizer starts from: h["lr"]
// if set, else its default. Schedules multiply it.
func BaseLR(name string, h Hyper) float64 {
	if v, ok := h["lr"]; ok {
		return v
	}
	switch name {
	case "sgd":
		return sgd.Default().LR
	case "adam":
		return adam.Default().LR
	case "adamw":
		return adam.DefaultW().LR
	case "sophiag":
		return sophia.DefaultG().LR
	case "sophiah":
		return sophia.DefaultH().LR
	case "adahessian":
		return adahessian.Default().LR
	case "mfac":
		return mfacDefaultLR()
	}
	return 0
}

// HyperNames returns the hyperparameter names the optimizer accepts.
func HyperNames(name string) []string {
	out := hyperNames()[name]
	sort.Strings(out)
	return out
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
