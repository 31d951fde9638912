package train

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/sgd"
	"github.com/curvopt/curvopt/optim/sophia"
)

// Optimizers returns the names NewOptimizer accepts, in the comparison order.
func Optimizers() []string {
	return []string{"sgd", "adam", "adamw", "sophiag", "sophiah", "adahessian", "mfac"}
}

// entry is one optimizer of the registry. Its knobs, their names and
// defaults are those of its Config (optim.Knobs); the entry only says how
// to make the Config for a run and the optimizer from it.
type entry struct {
	// config returns a pointer to the default Config with the run's
	// predictions per batch and seed applied where the optimizer takes them.
	config func(batch int, seed uint64) any
	// validate and build take what config returned.
	validate func(cfg any) error
	build    func(cfg any) (optim.Optimizer, error)
	// runDefault describes the knobs whose default is the run's, not the
	// Config's (SophiaG's bs: the batch's predictions, Sophia#48).
	runDefault map[string]string
}

// register makes an entry from an optimizer's default Config, what a run
// sets in it (nil: nothing) and its constructor.
func register[C interface{ Validate() error }, O optim.Optimizer](def func() C, run func(c *C, batch int, seed uint64), newOpt func(C) (O, error)) entry {
	return entry{
		config: func(batch int, seed uint64) any {
			c := def()
			if run != nil {
				run(&c, batch, seed)
			}
			return &c
		},
		validate: func(cfg any) error { return (*cfg.(*C)).Validate() },
		build: func(cfg any) (optim.Optimizer, error) {
			o, err := newOpt(*cfg.(*C))
			if err != nil {
				return nil, err
			}
			return o, nil
		},
	}
}

// seeded sets the seed of an optimizer's default probe source.
func seeded[C any](set func(c *C, seed uint64)) func(c *C, _ int, seed uint64) {
	return func(c *C, _ int, seed uint64) { set(c, seed) }
}

func registry(name string) (entry, bool) {
	switch name {
	case "sgd":
		return register(sgd.Default, nil, sgd.New), true
	case "adam":
		return register(adam.Default, nil, adam.New), true
	case "adamw":
		return register(adam.DefaultW, nil, adam.New), true
	case "sophiag":
		e := register(sophia.DefaultG, func(c *sophia.Config, batch int, seed uint64) {
			c.BatchSize, c.Seed = batch, seed // predictions per batch (Sophia#48)
		}, sophia.New)
		e.runDefault = map[string]string{"bs": "the batch's predictions"}
		return e, true
	case "sophiah":
		return register(sophia.DefaultH, seeded(func(c *sophia.Config, s uint64) { c.Seed = s }), sophia.New), true
	case "adahessian":
		e := register(adahessian.Default, func(c *adahessian.Config, batch int, seed uint64) {
			c.BatchSize, c.Seed = batch, seed // bs: predictions per batch, used with gnb
		}, adahessian.New)
		e.runDefault = map[string]string{"bs": "the batch's predictions"}
		return e, true
	case "mfac":
		return register(mfac.Default, nil, mfac.New), true
	}
	return entry{}, false
}

// resolve returns the named optimizer's entry and Config: its defaults,
// the run's predictions per batch and seed where it takes them, and h laid
// over them. Nothing is validated beyond the names and types of h's values.
func resolve(name string, h Hyper, batch int, seed uint64) (entry, any, error) {
	e, ok := registry(name)
	if !ok {
		return e, nil, fmt.Errorf("unknown optimizer %q (want one of %s)", name, strings.Join(Optimizers(), ", "))
	}
	cfg := e.config(batch, seed)
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first bad one, the same every time
	for _, k := range keys {
		if err := optim.SetKnob(cfg, k, h[k]); err != nil {
			if errors.Is(err, optim.ErrNoKnob) {
				return e, nil, fmt.Errorf("optimizer %s has no hyperparameter %q%s (it takes %s)", name, k, renameHint(k), strings.Join(HyperNames(name), ", "))
			}
			return e, nil, fmt.Errorf("optimizer %s: %w", name, err)
		}
	}
	return e, cfg, nil
}

// NewOptimizer builds the named optimizer from its defaults overridden by h.
// batch is the number of predictions per batch (SophiaG's bs defaults to it,
// Sophia#48) and seed seeds any random probes. A hyperparameter the
// optimizer does not take is an error naming it; an invalid value is the
// optimizer Config's *optim.HyperError, naming the hyperparameter.
func NewOptimizer(name string, h Hyper, batch int, seed uint64) (optim.Optimizer, error) {
	e, cfg, err := resolve(name, h, batch, seed)
	if err != nil {
		return nil, err
	}
	return e.build(cfg)
}

// ValidateHyper checks h for the named optimizer without building it: the
// names, the types and, by the optimizer Config's Validate, the values.
func ValidateHyper(name string, h Hyper, batch int) error {
	e, cfg, err := resolve(name, h, max(batch, 1), 0)
	if err != nil {
		return err
	}
	return e.validate(cfg)
}

// ResolveHyper returns every hyperparameter the named optimizer uses in a
// run with batch predictions per batch: its defaults overridden by h. A
// run records it in config.json and its checkpoint.
func ResolveHyper(name string, h Hyper, batch int, seed uint64) (Hyper, error) {
	_, cfg, err := resolve(name, h, batch, seed)
	if err != nil {
		return nil, err
	}
	knobs, err := optim.Knobs(cfg)
	if err != nil {
		return nil, err
	}
	out := make(Hyper, len(knobs))
	for _, k := range knobs {
		out[k.Name] = k.Value
	}
	return out, nil
}

// defaultKnobs returns the named optimizer's knobs with its default values
// (an unknown name has none).
func defaultKnobs(name string) []optim.Knob {
	e, ok := registry(name)
	if !ok {
		return nil
	}
	knobs, _ := optim.Knobs(e.config(0, 0)) // the registry's Configs are tagged correctly (TestKnobsAgree)
	return knobs
}

// knobFloat returns the number the named optimizer uses for a float knob:
// h's if set and valid, else its default (0 if it has no such knob).
func knobFloat(name string, h Hyper, knob string) float64 {
	r, err := ResolveHyper(name, h, 1, 0)
	if err != nil {
		r, _ = ResolveHyper(name, nil, 1, 0)
	}
	f, _ := r[knob].(float64)
	return f
}

// BaseLR returns the learning rate the named optimizer starts from: h's lr
// if set, else its default. Schedules multiply it.
func BaseLR(name string, h Hyper) float64 { return knobFloat(name, h, "lr") }

// BaseWD returns the weight decay the named optimizer uses: h's
// weight_decay if set, else its default. The default parameter groups apply
// it to weight matrices and kernels only (Config.DecayAll).
func BaseWD(name string, h Hyper) float64 { return knobFloat(name, h, "weight_decay") }

// HyperNames returns the hyperparameter names the optimizer accepts, in
// its Config's order.
func HyperNames(name string) []string {
	var out []string
	for _, k := range defaultKnobs(name) {
		out = append(out, k.Name)
	}
	return out
}

// OptimizerHelp describes every optimizer's hyperparameters and defaults,
// for a command line's usage text; the defaults are read from the
// optimizers' Configs.
func OptimizerHelp() string {
	var b strings.Builder
	for _, n := range Optimizers() {
		e, _ := registry(n)
		var parts []string
		for _, k := range defaultKnobs(n) {
			v := fmt.Sprint(k.Value)
			if d, ok := e.runDefault[k.Name]; ok {
				v = "= " + d
			}
			parts = append(parts, k.Name+" "+v)
		}
		fmt.Fprintf(&b, "  %-11s %s\n", n, strings.Join(parts, ", "))
	}
	return b.String()
}
