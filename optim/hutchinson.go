package optim

import (
	"fmt"

	"github.com/curvopt/curvopt/optim/internal/kernel"
	"gorgonia.org/tensor"
)

// Hutchinson is the probe life cycle of a Hutchinson estimate of the
// Hessian's diagonal, diag(H) ≈ D = z⊙(H·z) for a random probe z with
// independent entries of mean 0 and variance 1 (E[z⊙Hz] = diag H), written
// once for every optimizer that uses one (SophiaH, AdaHessian):
//
//   - refresh interval: a fresh D is due at steps 1, k+1, 2k+1, … (Due);
//   - draw: the probe for a due step is drawn once, before the gradient is
//     computed, and offered as an HVPRequest (Request); it is kept until a
//     Step has used it, so a failed Step reuses it;
//   - product: Estimate takes H·z from the answered request, or asks the
//     oracle, checks it is finite and forms D = z⊙(H·z) in place;
//   - checkpoints: the probe generator's state is saved with the
//     optimizer's (Blob, declared in its Layout, and Reset after a load),
//     so that a resumed run draws the same probes as an uninterrupted one.
//
// It is the DiagEstimator that runs Before the update. The zero value is
// not usable; make one with NewHutchinson.
type Hutchinson struct {
	name     string
	src      ProbeSource
	interval int64
	work     Buffers // "probe" z, "hvp" (H·z, then D)
	req      HVPRequest
	pending  bool // z is drawn and not yet used by a successful Estimate
}

// BlobProbes is the State.Blobs key of the probe generator's state.
const BlobProbes = "probes"

// NewHutchinson returns the life cycle for the optimizer name (used in
// errors), drawing probes from src and refreshing every interval ≥ 1 steps.
func NewHutchinson(name string, src ProbeSource, interval int) *Hutchinson {
	return &Hutchinson{name: name, src: src, interval: int64(max(interval, 1)), work: NewBuffers("probe", "hvp")}
}

// Source returns the probe source.
func (h *Hutchinson) Source() ProbeSource { return h.src }

// Kind returns "hutchinson".
func (*Hutchinson) Kind() string { return "hutchinson" }

// What returns "Hutchinson estimate z⊙(H·z)".
func (*Hutchinson) What() string { return "Hutchinson estimate z⊙(H·z)" }

// Needs returns HVP.
func (*Hutchinson) Needs() Needs { return Needs{HVP: true} }

// Timing returns Before: the probe is drawn, and H·z can be requested,
// before the gradient.
func (*Hutchinson) Timing() Timing { return Before }

// Layout declares the probe generator's state (Blob) and forgets a drawn
// probe after LoadState (Reset).
func (h *Hutchinson) Layout() Layout {
	return Layout{Blobs: []Blob{h.Blob()}, OnLoad: []func(){h.Reset}}
}

// Due reports whether step t (1-based) computes a fresh estimate:
// t = 1, k+1, 2k+1, … (the paper's t mod k = 1).
func (h *Hutchinson) Due(t int64) bool { return due(t, h.interval, Before) }

// Request returns the H·z the coming step t needs at the current
// parameters, drawing z if it is not drawn yet, or nil when step t is not
// due.
func (h *Hutchinson) Request(params []Param, t int64) (*HVPRequest, error) {
	if !h.Due(t) {
		return nil, nil
	}
	if err := h.draw(params); err != nil {
		return nil, err
	}
	return &h.req, nil
}

func (h *Hutchinson) draw(params []Param) error {
	if err := h.work.Ensure(h.name, params); err != nil {
		return err
	}
	if h.pending {
		return nil
	}
	if err := h.src.Fill(h.work.Slot(0)); err != nil {
		return fmt.Errorf("%s: drawing the Hutchinson probe: %w", h.name, err)
	}
	h.req = HVPRequest{V: h.work.Slot(0), Out: h.work.Slot(1)}
	h.pending = true
	return nil
}

// Estimate returns D = z⊙(H·z) at the current parameters for step t, one
// tensor per parameter (owned by h, valid until the next Estimate). H·z is
// the answered request's Out or, if the request was not answered, o's
// answer. On error (an oracle failure or a non-finite H·z, named with the
// parameter) the probe is kept for the next call. Call Used once the
// caller has accepted D.
func (h *Hutchinson) Estimate(params []Param, o Oracle, t int64) ([]*tensor.Dense, error) {
	if err := h.draw(params); err != nil {
		return nil, err
	}
	z, hz := h.work.Slot(0), h.work.Slot(1)
	if !h.req.take() {
		if err := o.HVP(z, hz); err != nil {
			return nil, fmt.Errorf("%s: step %d: HVP query for the Hutchinson estimate failed: %w", h.name, t, err)
		}
	}
	if err := CheckFinite(h.name, "Hessian-vector product H·z", params, hz); err != nil {
		return nil, fmt.Errorf("step %d (nothing changed): %w", t, err)
	}
	for i := range hz {
		switch hz[i].Dtype() {
		case tensor.Float64:
			kernel.MulInto(hz[i].Float64s(), z[i].Float64s())
		case tensor.Float32:
			kernel.MulInto(hz[i].Float32s(), z[i].Float32s())
		}
	}
	return hz, nil
}

// Used marks the probe as consumed: the next due step draws a new one.
func (h *Hutchinson) Used() { h.pending = false }

// Reset forgets a drawn probe and the scratch buffers (after LoadState).
func (h *Hutchinson) Reset() {
	h.pending = false
	h.req = HVPRequest{}
	h.work = NewBuffers("probe", "hvp")
}

// Blob declares the probe generator's state (State.Blobs["probes"]) for
// the Layout of an optimizer that uses h: saved when the source implements
// encoding.BinaryMarshaler, restored when it implements
// encoding.BinaryUnmarshaler.
func (h *Hutchinson) Blob() Blob { return Blob{Key: BlobProbes, What: "probe source", Of: h.src} }
