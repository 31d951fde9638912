package train

import (
	"fmt"
	"slices"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// shardedOpt is an optimizer whose state is sharded over the ranks (see
// shard.go): to train.Step and the checkpoints it is the whole optimizer
// (full parameters, full requests, full state in today's format), while
// the optimizer inside updates this rank's slice.
type shardedOpt struct {
	inner  optim.Optimizer
	lay    *shardLayout
	comm   Comm
	g      gatherer
	groups []optim.Group // the full list's, as set
	// a Hutchinson request: the inner one for the slice, the outer one for
	// the whole vector
	innerReq, req *optim.HVPRequest
	flag          [1]float64
	oracle        shardOracle
	values        []*tensor.Dense // the full parameters' values
	mine          []*tensor.Dense // this rank's pieces of them
}

func newShardedOpt(inner optim.Optimizer, lay *shardLayout, comm Comm) *shardedOpt {
	s := &shardedOpt{inner: inner, lay: lay, comm: comm, g: gatherer{comm: comm, lay: lay}}
	s.oracle.s = s
	s.mine = lay.values()
	for _, p := range lay.full {
		s.values = append(s.values, p.Value)
	}
	return s
}

// Name is the inner optimizer's.
func (s *shardedOpt) Name() string { return s.inner.Name() }

// Needs is the inner optimizer's.
func (s *shardedOpt) Needs() optim.Needs { return s.inner.Needs() }

// LR is the inner optimizer's.
func (s *shardedOpt) LR() float64 { return s.inner.LR() }

// SetLR sets the inner optimizer's.
func (s *shardedOpt) SetLR(lr float64) error { return s.inner.SetLR(lr) }

// Groups returns the groups of the full list.
func (s *shardedOpt) Groups() []optim.Group { return s.groups }

// SetGroups sets groups of the full list: the inner optimizer gets each
// group's names in its slice (a group without any is left out).
func (s *shardedOpt) SetGroups(groups []optim.Group) error {
	if err := s.inner.SetGroups(s.shardGroups(groups)); err != nil {
		return err
	}
	s.groups = groups
	return nil
}

func (s *shardedOpt) shardGroups(groups []optim.Group) []optim.Group {
	if groups == nil {
		return nil
	}
	var out []optim.Group
	for _, g := range groups {
		h := g
		h.Params = nil
		for _, p := range s.lay.shard {
			if slices.Contains(g.Params, p.Name) {
				h.Params = append(h.Params, p.Name)
			}
		}
		if len(h.Params) > 0 {
			out = append(out, h)
		}
	}
	return out
}

// Close closes the inner optimizer.
func (s *shardedOpt) Close() error { return s.inner.Close() }

// Diagnostics are the inner optimizer's, over this rank's slice.
func (s *shardedOpt) Diagnostics() map[string]float64 {
	if d, ok := s.inner.(optim.Diagnostics); ok {
		return d.Diagnostics()
	}
	return nil
}

// Request asks the inner optimizer for its request on the slice and
// returns one for the whole vector: the probe gathered from the ranks'
// pieces (each drew the whole probe and kept its piece).
func (s *shardedOpt) Request(params []optim.Param) (*optim.HVPRequest, error) {
	r, ok := s.inner.(optim.Requester)
	if !ok {
		return nil, nil
	}
	in, err := r.Request(s.lay.shard)
	if err != nil || in == nil {
		s.innerReq, s.req = nil, nil
		return nil, err
	}
	if in != s.innerReq || s.req == nil {
		s.innerReq = in
		s.req = &optim.HVPRequest{V: s.lay.likeFull(), Out: s.lay.likeFull()}
		if err := s.g.gather(in.V, s.req.V, -1); err != nil {
			return nil, err
		}
	}
	return s.req, nil
}

// Step hands the slice of an answered request to the inner optimizer,
// which updates this rank's slice; every rank then learns whether any
// failed (so that all stop together), and the ranks all-gather the slices
// into the full parameters.
func (s *shardedOpt) Step(params []optim.Param, o optim.Oracle) error {
	if s.req != nil && s.req.Answered() {
		if err := s.lay.slice(s.req.Out, s.innerReq.Out); err != nil {
			return err
		}
		s.innerReq.Answer()
	}
	s.req, s.innerReq = nil, nil
	s.oracle.o = o
	err := s.inner.Step(s.lay.shard, &s.oracle)
	s.flag[0] = 0
	if err != nil {
		s.flag[0] = 1
	}
	if rerr := s.comm.AllreduceFloat64(s.flag[:]); rerr != nil {
		return fmt.Errorf("shard: %w", rerr)
	}
	if err != nil {
		return fmt.Errorf("rank %d's slice: %w", s.comm.Rank(), err)
	}
	if s.flag[0] > 0 {
		return fmt.Errorf("shard: the update failed on another rank (%g of %d)", s.flag[0], s.comm.Size())
	}
	return s.g.gather(s.mine, s.values, -1)
}

// shardOracle answers the inner optimizer's queries on its slice: the
// query for the whole vector (its vector gathered from the ranks), sliced.
type shardOracle struct {
	o      optim.Oracle
	s      *shardedOpt
	v, out []*tensor.Dense // the whole vector's query and answer
}

// prepare makes the query's buffers and brings the full parameters up to
// date: a query made after the update (SophiaG's) must see every rank's
// updated slice, not only this one's.
func (q *shardOracle) prepare() error {
	if q.out == nil {
		q.v, q.out = q.s.lay.likeFull(), q.s.lay.likeFull()
	}
	return q.s.g.gather(q.s.mine, q.s.values, -1)
}

// Provides forwards the whole oracle's queries.
func (q *shardOracle) Provides() optim.Needs {
	if p, ok := q.o.(optim.Provider); ok {
		return p.Provides()
	}
	return optim.Needs{HVP: true, SampledGrad: true}
}

// HVP sets out (the slice) to the slice of H·v, v gathered.
func (q *shardOracle) HVP(v, out []*tensor.Dense) error {
	if err := q.prepare(); err != nil {
		return err
	}
	if err := q.s.g.gather(v, q.v, -1); err != nil {
		return err
	}
	if err := q.o.HVP(q.v, q.out); err != nil {
		return err
	}
	return q.s.lay.slice(q.out, out)
}

// SampledGrad sets out to the slice of the sampled-label gradient.
func (q *shardOracle) SampledGrad(out []*tensor.Dense) error {
	if err := q.prepare(); err != nil {
		return err
	}
	if err := q.o.SampledGrad(q.out); err != nil {
		return err
	}
	return q.s.lay.slice(q.out, out)
}
