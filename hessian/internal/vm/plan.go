package vm

// The memory plan: the nodes of a subgraph in an order where every input
// comes before its readers, the step at which each intermediate is read
// for the last time, and a buffer slot for each op output of package nn
// chosen so that no two outputs alive at the same time share one.

import (
	"fmt"

	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// kind is how a step gets its value.
type kind uint8

const (
	kindInput   kind = iota // bound by the caller (an op-less node): read at every run
	kindPooled              // nn op writing into a pooled slot, freed after its last reader
	kindKept                // nn op writing into a dedicated buffer bound to the node
	kindForeign             // another op: Do allocates; the result is kept until its last reader
)

// class is a pool key: buffers of one class are interchangeable.
type class struct {
	dt   tensor.Dtype
	size int
}

// step is one node of the plan.
type step struct {
	n     *gorgonia.Node
	op    gorgonia.Op
	kind  kind
	in    []int // indices of the inputs' steps, in the op's argument order
	last  int   // index of the last step reading this one; -1: none
	keep  bool  // its value must outlive the run (bound to the node)
	alias bool  // a foreign op that may return an input (ReturnsPtr)
	cls   class // nn ops: the output's class
	slot  int   // kindPooled: slot index within cls
	free  []int // steps whose value is dead once this step has run
	bytes int64 // nn ops: the output's size in bytes
}

// Plan is the memory accounting of one machine, in bytes of op outputs.
type Plan struct {
	// Steps is the number of nodes in the subgraph, Ops those with an op.
	Steps, Ops int
	// Tape is what a machine that keeps every op output alive holds (the
	// outputs of every op of package nn in the subgraph): gorgonia's tape
	// machine with nn's ops, which own their outputs.
	Tape int64
	// Kept is the outputs that outlive a run (roots and nodes the caller
	// reads after the run).
	Kept int64
	// PeakLive is the most bytes of pooled intermediates alive at once.
	PeakLive int64
	// Slots is the pooled buffers the plan asks for (≥ PeakLive: a buffer
	// is reused only by an output of the same dtype and size).
	Slots int64
}

// Peak is the plan's peak of op outputs: Kept + Slots.
func (p Plan) Peak() int64 { return p.Kept + p.Slots }

// order returns the nodes reachable from roots, inputs before readers.
func order(roots []*gorgonia.Node) ([]*gorgonia.Node, map[*gorgonia.Node]int, [][]*gorgonia.Node, error) {
	idx := map[*gorgonia.Node]int{}
	var out []*gorgonia.Node
	var kids [][]*gorgonia.Node
	state := map[*gorgonia.Node]uint8{} // 1 visiting, 2 done
	type frame struct {
		n    *gorgonia.Node
		cs   []*gorgonia.Node
		next int
	}
	for _, r := range roots {
		if r == nil {
			return nil, nil, nil, fmt.Errorf("vm: nil root")
		}
		if state[r] == 2 {
			continue
		}
		stack := []frame{{n: r, cs: children(r)}}
		state[r] = 1
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.next < len(f.cs) {
				c := f.cs[f.next]
				f.next++
				switch state[c] {
				case 1:
					return nil, nil, nil, fmt.Errorf("vm: the graph has a cycle through %v", c)
				case 0:
					state[c] = 1
					stack = append(stack, frame{n: c, cs: children(c)})
				}
				continue
			}
			state[f.n] = 2
			idx[f.n] = len(out)
			out = append(out, f.n)
			kids = append(kids, f.cs)
			stack = stack[:len(stack)-1]
		}
	}
	return out, idx, kids, nil
}

// children returns n's inputs in argument order.
func children(n *gorgonia.Node) []*gorgonia.Node {
	g := n.Graph()
	if g == nil {
		return nil
	}
	it := g.From(n.ID())
	var cs []*gorgonia.Node
	for it.Next() {
		cs = append(cs, it.Node().(*gorgonia.Node))
	}
	return cs
}

// plan builds the steps of the subgraph of roots; keep says which nodes
// must outlive a run besides the roots.
func plan(roots []*gorgonia.Node, keep func(*gorgonia.Node) bool) ([]step, Plan, error) {
	nodes, idx, kids, err := order(roots)
	if err != nil {
		return nil, Plan{}, err
	}
	steps := make([]step, len(nodes))
	var acc Plan
	acc.Steps = len(nodes)
	isRoot := map[*gorgonia.Node]bool{}
	for _, r := range roots {
		isRoot[r] = true
	}
	for i, n := range nodes {
		s := &steps[i]
		s.n, s.op, s.last = n, n.Op(), -1
		s.keep = isRoot[n] || keep(n)
		s.in = make([]int, len(kids[i]))
		for k, c := range kids[i] {
			s.in[k] = idx[c]
		}
		switch {
		case s.op == nil:
			s.kind = kindInput
			if len(s.in) > 0 {
				return nil, Plan{}, fmt.Errorf("vm: node %v has inputs but no op", n)
			}
		default:
			acc.Ops++
			dt, size, ok := nn.WritesOutput(s.op)
			if !ok {
				s.kind = kindForeign
				s.alias = s.op.ReturnsPtr()
				break
			}
			s.cls = class{dt: dt, size: size}
			s.bytes = int64(size) * int64(dt.Size())
			acc.Tape += s.bytes
			s.kind = kindPooled
		}
	}
	for i := range steps {
		for _, j := range steps[i].in {
			steps[j].last = max(steps[j].last, i)
		}
	}
	// A foreign op that may return one of its inputs extends the input's
	// lifetime to its own (and keeps it when it is kept); readers come
	// after the steps they read, so one pass from the end carries chains.
	for i := len(steps) - 1; i >= 0; i-- {
		s := &steps[i]
		if !s.alias {
			continue
		}
		for _, j := range s.in {
			steps[j].keep = steps[j].keep || s.keep
			steps[j].last = max(steps[j].last, s.last, i)
		}
	}
	for i := range steps {
		s := &steps[i]
		if s.kind == kindPooled && s.keep {
			s.kind = kindKept
			acc.Kept += s.bytes
		}
	}
	// Slots: an output takes a free slot of its class (or a new one) before
	// its inputs are released, so it never shares a buffer with an input.
	freeSlots := map[class][]int{}
	count := map[class]int{}
	var live int64
	for i := range steps {
		s := &steps[i]
		if s.kind == kindPooled {
			fs := freeSlots[s.cls]
			if k := len(fs); k > 0 {
				s.slot, freeSlots[s.cls] = fs[k-1], fs[:k-1]
			} else {
				s.slot = count[s.cls]
				count[s.cls]++
				acc.Slots += s.bytes
			}
			live += s.bytes
			acc.PeakLive = max(acc.PeakLive, live)
		}
		// values dead after step i: inputs read for the last time here
		// (each once); every node but a root has a reader, as the
		// subgraph is what the roots reach
		for k, j := range s.in {
			if steps[j].last != i || steps[j].keep || dup(s.in[:k], j) {
				continue
			}
			s.free = append(s.free, j)
		}
		for _, j := range s.free {
			if d := &steps[j]; d.kind == kindPooled {
				freeSlots[d.cls] = append(freeSlots[d.cls], d.slot)
				live -= d.bytes
			}
		}
	}
	return steps, acc, nil
}

func dup(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
