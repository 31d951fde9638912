package optim

import (
	"fmt"
	"math"
	"strings"
)

// Group is one parameter group, as in torch.optim's param_groups: the
// parameters it holds (by name) train with the optimizer's learning rate
// times LRScale and with the group's own weight decay, in the optimizer's
// sense of weight decay (coupled L2 for SGD, Adam and M-FAC; decoupled for
// AdamW, Sophia and AdaHessian).
type Group struct {
	Name        string   `json:"name"`
	Params      []string `json:"params"`
	LRScale     float64  `json:"lr_scale"`
	WeightDecay float64  `json:"weight_decay"`
}

// DecayGroups splits params by the nanoGPT recipe that Sophia was tuned
// with: tensors of rank ≥ 2 (weight matrices, convolution kernels) form the
// group "decay" with weight decay wd; tensors of rank ≤ 1 (biases,
// batch-norm and layer-norm scales and shifts) form the group "no_decay"
// with weight decay 0. Both have LRScale 1; an empty group is left out.
func DecayGroups(params []Param, wd float64) []Group {
	decay := Group{Name: "decay", LRScale: 1, WeightDecay: wd}
	none := Group{Name: "no_decay", LRScale: 1}
	for _, p := range params {
		if p.Value != nil && p.Value.Dims() >= 2 {
			decay.Params = append(decay.Params, p.Name)
		} else {
			none.Params = append(none.Params, p.Name)
		}
	}
	var out []Group
	for _, g := range []Group{decay, none} {
		if len(g.Params) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// Hyper is the part of an optimizer's configuration that a training loop
// changes or splits: the learning rate (for schedules) and the parameter
// groups with their learning-rate scales and weight decays. Every optimizer
// of the suite embeds one, so SetLR, LR, SetGroups and Groups are written
// once. Without SetGroups there is one group holding every parameter, with
// LRScale 1 and the configured weight decay (torch.optim's default).
//
// Per-parameter values are resolved at the first step (ResolveGroups) into
// slices, so the update kernels read two numbers per parameter and
// allocate nothing.
//
// Hyper also holds the optimizer's guard, written once for every optimizer
// (guard.go): the step prologue BeginStep, Begin and End around every other
// call (refusing concurrent use and use after Close) and Close. SetLR and
// SetGroups go through the guard; LR and Groups only read and may be called
// at any time except during SetLR, SetGroups or LoadState.
//
// The zero value is not usable; make one with NewHyper. Copies of a Hyper
// share its guard.
type Hyper struct {
	g      *guard
	name   string
	lr, wd float64
	groups []Group
	// resolved: per parameter, for the parameter names in names
	names []string
	lrs   []float64
	wds   []float64
}

// NewHyper returns the learning rate lr and default weight decay wd of the
// optimizer name (used in errors).
func NewHyper(name string, lr, wd float64) Hyper {
	return Hyper{g: new(guard), name: name, lr: lr, wd: wd}
}

// LR returns the base learning rate.
func (h *Hyper) LR() float64 { return h.lr }

// SetLR changes the base learning rate (for schedules); lr must be finite
// and > 0.
func (h *Hyper) SetLR(lr float64) error {
	if err := h.Begin("SetLR"); err != nil {
		return err
	}
	defer h.End()
	if !(lr > 0) || math.IsInf(lr, 0) {
		return &HyperError{Optimizer: h.name, Field: "lr", Value: lr, Want: "finite and > 0"}
	}
	h.lr = lr
	return nil
}

// Groups returns a copy of the parameter groups (nil: one group of all
// parameters with the configured weight decay).
func (h *Hyper) Groups() []Group {
	if h.groups == nil {
		return nil
	}
	out := make([]Group, len(h.groups))
	for i, g := range h.groups {
		out[i] = g
		out[i].Params = append([]string(nil), g.Params...)
	}
	return out
}

// SetGroups replaces the parameter groups. Each group needs a finite
// LRScale ≥ 0 and weight decay ≥ 0, and no parameter may be in two groups;
// that every parameter is in a group is checked at the next step. nil
// restores the single default group.
func (h *Hyper) SetGroups(groups []Group) error {
	if err := h.Begin("SetGroups"); err != nil {
		return err
	}
	defer h.End()
	return h.setGroups(groups)
}

func (h *Hyper) setGroups(groups []Group) error {
	seen := map[string]string{}
	for i, g := range groups {
		name := g.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		if !(g.LRScale >= 0) || math.IsInf(g.LRScale, 0) {
			return fmt.Errorf("%s: group %q: lr_scale %v: must be finite and >= 0", h.name, name, g.LRScale)
		}
		if !(g.WeightDecay >= 0) || math.IsInf(g.WeightDecay, 0) {
			return fmt.Errorf("%s: group %q: weight_decay %v: must be finite and >= 0", h.name, name, g.WeightDecay)
		}
		for _, p := range g.Params {
			if other, ok := seen[p]; ok {
				return fmt.Errorf("%s: parameter %q is in groups %q and %q", h.name, p, other, name)
			}
			seen[p] = name
		}
	}
	h.groups = nil
	if groups != nil {
		h.groups = make([]Group, len(groups))
		for i, g := range groups {
			h.groups[i] = g
			h.groups[i].Params = append([]string(nil), g.Params...)
		}
	}
	h.names = nil
	return nil
}

// ResolveGroups maps every parameter to its group's learning-rate scale and
// weight decay. It does the work at the first call (and after SetGroups);
// later calls only check that the parameter names are the same, without
// allocating. A parameter in no group is an error naming it and the groups;
// two parameters with one name are an error naming both.
func (h *Hyper) ResolveGroups(params []Param) error {
	if h.names != nil && len(h.names) == len(params) {
		same := true
		for i, p := range params {
			if p.Name != h.names[i] {
				same = false
				break
			}
		}
		if same {
			return nil
		}
	}
	if err := checkNames(h.name, params); err != nil {
		return err
	}
	lrs, wds := make([]float64, len(params)), make([]float64, len(params))
	names := make([]string, len(params))
	for i, p := range params {
		names[i] = p.Name
		lrs[i], wds[i] = 1, h.wd
		if h.groups == nil {
			continue
		}
		found := false
		for _, g := range h.groups {
			for _, n := range g.Params {
				if n == p.Name {
					lrs[i], wds[i], found = g.LRScale, g.WeightDecay, true
				}
			}
		}
		if !found {
			gs := make([]string, len(h.groups))
			for j, g := range h.groups {
				gs[j] = g.Name
			}
			return fmt.Errorf("%s: parameter %q is in no parameter group (groups: %s)", h.name, p.Name, strings.Join(gs, ", "))
		}
	}
	h.names, h.lrs, h.wds = names, lrs, wds
	return nil
}

// ParamLR returns the learning rate of parameter i (after ResolveGroups): the base
// learning rate times its group's LRScale.
func (h *Hyper) ParamLR(i int) float64 { return h.lr * h.lrs[i] }

// ParamWD returns the weight decay of parameter i (after ResolveGroups).
func (h *Hyper) ParamWD(i int) float64 { return h.wds[i] }

// DefaultWeightDecay returns the configured (default-group) weight decay.
func (h *Hyper) DefaultWeightDecay() float64 { return h.wd }

// ExportGroups records the groups in st (nothing for the default group).
func (h *Hyper) ExportGroups(st *State) {
	st.Groups = h.Groups()
}

// ImportGroups restores the groups recorded in st, as torch's
// load_state_dict restores param_groups; a state without groups keeps the
// current ones.
func (h *Hyper) ImportGroups(st *State) error {
	if st.Groups == nil {
		return nil
	}
	return h.setGroups(st.Groups)
}
