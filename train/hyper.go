package train

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/curvopt/curvopt/optim"
)

// Hyper holds hyperparameter overrides by their one name, the optimizer
// Config's hyper tag (lr, weight_decay, beta1, beta2, eps, momentum,
// dampening, nesterov, rho, bs, hessian_interval, hessian_power, ngrads,
// damp: HyperKnobs lists them); a name that is absent keeps the
// optimizer's default (OptimizerHelp). A value is a float64 or an int for a
// number, a bool for a switch (nesterov).
//
// A run records the values it used, all of them (ResolveHyper), in
// config.json and its checkpoint. Decoding JSON converts the names an
// older version recorded (wd, k, power, m; nesterov as 0 or 1).
type Hyper map[string]any

// RenamedHypers returns the old hyperparameter names (flags of earlier
// versions) with the names that replaced them, as pairs {old, new}.
func RenamedHypers() [][2]string {
	return [][2]string{{"wd", "weight_decay"}, {"k", "hessian_interval"}, {"power", "hessian_power"}, {"m", "ngrads"}}
}

// RenamedHyper returns the name that replaced an old hyperparameter name
// (RenamedHypers).
func RenamedHyper(old string) (string, bool) {
	for _, r := range RenamedHypers() {
		if r[0] == old {
			return r[1], true
		}
	}
	return "", false
}

// renameHint says, for a name no optimizer takes, which one is meant: the
// new name of an old one, or the underscored spelling of a hyphenated one.
func renameHint(name string) string {
	if n, ok := RenamedHyper(name); ok {
		return fmt.Sprintf(" (renamed %s)", n)
	}
	if u := strings.ReplaceAll(name, "-", "_"); u != name && knobKind(u) != nil {
		return fmt.Sprintf(" (the name is %s)", u)
	}
	return ""
}

// UnmarshalJSON decodes a hyperparameter map, converting the names and
// values an older version recorded: wd, k, power and m become
// weight_decay, hessian_interval, hessian_power and ngrads, and a numeric
// nesterov a bool. A name given twice (old and new) is an error.
func (h *Hyper) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*h = nil
		return nil
	}
	out := make(Hyper, len(raw))
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		name := k
		if n, ok := RenamedHyper(k); ok {
			name = n
			if _, dup := raw[n]; dup {
				return fmt.Errorf("hyperparameters: both %q and %q (its new name) are given", k, n)
			}
		}
		if f, ok := v.(float64); ok && name == "nesterov" {
			v = f != 0 // recorded as 1 = on before nesterov was a bool
		}
		out[name] = v
	}
	*h = out
	return nil
}

// HyperKnob describes one hyperparameter name across the optimizers that
// take it, for a command line: its flag is -Name.
type HyperKnob struct {
	Name string
	Kind optim.KnobKind
	// Usage says which optimizers take it and what it is there, e.g.
	// "adam, adamw: second-moment decay; sophiag, sophiah: Hessian-EMA
	// decay, per refresh" (OptimizerHelp gives the defaults).
	Usage string
}

// HyperKnobs returns every hyperparameter name of the optimizers, in the
// order they first appear (Optimizers' order, each Config's field order),
// with the usage text read from the Configs' doc tags.
func HyperKnobs() []HyperKnob {
	type use struct {
		doc  string
		opts []string
	}
	var order []string
	kinds := map[string]optim.KnobKind{}
	uses := map[string][]*use{}
	for _, n := range Optimizers() {
		for _, k := range defaultKnobs(n) {
			if _, seen := kinds[k.Name]; !seen {
				order = append(order, k.Name)
				kinds[k.Name] = k.Kind
			}
			found := false
			for _, u := range uses[k.Name] {
				if u.doc == k.Doc {
					u.opts, found = append(u.opts, n), true
				}
			}
			if !found {
				uses[k.Name] = append(uses[k.Name], &use{k.Doc, []string{n}})
			}
		}
	}
	out := make([]HyperKnob, 0, len(order))
	for _, name := range order {
		var parts []string
		for _, u := range uses[name] {
			parts = append(parts, strings.Join(u.opts, ", ")+": "+u.doc)
		}
		out = append(out, HyperKnob{Name: name, Kind: kinds[name], Usage: strings.Join(parts, "; ")})
	}
	return out
}

// knobKind returns the kind of the named hyperparameter (nil: no optimizer
// takes it).
func knobKind(name string) *optim.KnobKind {
	for _, n := range Optimizers() {
		for _, k := range defaultKnobs(n) {
			if k.Name == name {
				return &k.Kind
			}
		}
	}
	return nil
}

// ParseHyperValue parses s as a value of the named hyperparameter: a
// number for a float knob, an integer for an int knob, true or false for a
// bool knob. The value itself is checked by the optimizer's Config.
func ParseHyperValue(name, s string) (any, error) {
	kind := knobKind(name)
	if kind == nil {
		return nil, fmt.Errorf("no optimizer has a hyperparameter %q%s", name, renameHint(name))
	}
	switch *kind {
	case optim.KnobInt:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s: not an integer: %q", name, s)
		}
		return int(n), nil
	case optim.KnobBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s: not true or false: %q", name, s)
		}
		return b, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return nil, fmt.Errorf("%s: not a number: %q", name, s)
	}
	return f, nil
}
