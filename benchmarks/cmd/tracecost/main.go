// Command tracecost measures how many Hessian-vector products Hutchinson and
// Hutch++ need for the same standard error of the trace, on the curvature
// golden models and, given a cmd/train output directory, on the trained
// model of its checkpoint.
//
// Method. For each model and repetition it draws a pilot of -pilot
// Hutchinson probes and -pilot Hutch++ residual probes for each sketch size
// k (hessian/spectrum, fixed sample counts, no stopping). The standard
// error target is -target·‖H‖_F (‖H‖_F estimated from the Hutchinson pilot,
// as the estimators' stopping rule does; one table per target). With s the sample standard deviation
// of the per-probe values, an estimator reaches standard error SE after
// n = (s/SE)² probes, so Hutchinson needs (s/SE)² products and Hutch++
// k + rank(Q) + (s_k/SE)². The table prints the median over repetitions.
//
//	go run ./benchmarks/cmd/tracecost                          # golden models only
//	go run ./cmd/train -out /tmp/run && go run ./benchmarks/cmd/tracecost -run /tmp/run
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/train"
	"gorgonia.org/tensor"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tracecost:", err)
		os.Exit(1)
	}
}

type options struct {
	runDir string
	reps   int
	pilot  int
	target []float64
	ks     []int
	batch  int
	seed   uint64
}

func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("tracecost", flag.ContinueOnError)
	var o options
	var ks string
	fs.StringVar(&o.runDir, "run", "", "cmd/train output directory whose checkpoint.gob is measured too (synthetic data)")
	fs.IntVar(&o.reps, "reps", 3, "repetitions (different seeds)")
	fs.IntVar(&o.pilot, "pilot", 60, "pilot probes per estimator and repetition")
	targets := fs.String("target", "0.05,0.01", "standard error targets as fractions of ‖H‖_F (one table each)")
	fs.StringVar(&ks, "k", "10,20,50", "Hutch++ sketch sizes")
	fs.IntVar(&o.batch, "batch", 64, "batch size for the checkpoint's model")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.reps < 1 || o.pilot < 2 {
		return fmt.Errorf("-reps %d, -pilot %d: want ≥ 1 and ≥ 2", o.reps, o.pilot)
	}
	for _, f := range strings.Split(*targets, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(v > 0) {
			return fmt.Errorf("-target: %q is not a positive number", f)
		}
		o.target = append(o.target, v)
	}
	for _, f := range strings.Split(ks, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 {
			return fmt.Errorf("-k: %q is not a positive integer", f)
		}
		o.ks = append(o.ks, k)
	}

	type model struct {
		name string
		eng  *hessian.Engine
	}
	var models []model
	files, err := golden.Files(golden.KindCurvature)
	if err != nil {
		return err
	}
	for _, f := range files {
		c, err := golden.LoadCurvature(f)
		if err != nil {
			return err
		}
		m, err := c.NewModel()
		if err != nil {
			return err
		}
		eng, err := hessian.New(m, optim.Needs{HVP: true})
		if err != nil {
			return err
		}
		if err := eng.SetBatch(c.Input(), c.Labels); err != nil {
			return err
		}
		models = append(models, model{strings.TrimSuffix(filepath.Base(f), ".json"), eng})
	}
	if o.runDir != "" {
		eng, name, err := checkpointEngine(o.runDir, o.batch)
		if err != nil {
			return err
		}
		models = append(models, model{name, eng})
	}
	defer func() {
		for _, m := range models {
			m.eng.Close()
		}
	}()

	rows := make([]row, len(models))
	for i, m := range models {
		if rows[i], err = measure(m.eng, o); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	for ti, target := range o.target {
		fmt.Fprintf(w, "HVPs for a trace standard error of %g·‖H‖_F (median of %d repetitions, %d pilot probes each)\n\n", target, o.reps, o.pilot)
		head := "| model | d | trace (estimate) | ‖H‖_F (estimate) | Hutchinson |"
		sep := "|---|---|---|---|---|"
		for _, k := range o.ks {
			head += fmt.Sprintf(" Hutch++ k=%d |", k)
			sep += "---|"
		}
		fmt.Fprintln(w, head)
		fmt.Fprintln(w, sep)
		for i, m := range models {
			r := rows[i]
			line := fmt.Sprintf("| %s | %d | %.4g | %.4g | %s |", m.name, m.eng.Dim(), r.trace, r.fro, fmtCount(r.hutch[ti]))
			for j := range o.ks {
				line += fmt.Sprintf(" %s |", fmtCount(r.pp[j][ti]))
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintln(w)
	}
	return nil
}

func fmtCount(v float64) string {
	if v >= 1e5 {
		return fmt.Sprintf("%.3g", v)
	}
	return strconv.Itoa(int(math.Ceil(v)))
}

type row struct {
	trace, fro float64
	hutch      []float64   // per target
	pp         [][]float64 // per sketch size, per target
}

// measure returns the median HVP counts over the repetitions, per target.
func measure(op spectrum.Operator, o options) (row, error) {
	var traces, fros []float64
	nt := len(o.target)
	hs := make([][]float64, nt)
	pps := make([][][]float64, len(o.ks))
	for i := range pps {
		pps[i] = make([][]float64, nt)
	}
	fixed := func(k int) spectrum.TraceConfig {
		return spectrum.TraceConfig{MinSamples: o.pilot, MaxSamples: o.pilot, Tol: 1e-300, Sketch: k}
	}
	for rep := 0; rep < o.reps; rep++ {
		rng := rand.New(rand.NewPCG(o.seed, uint64(rep)))
		h, err := spectrum.Hutchinson(op, fixed(0), rng)
		if err != nil && !errors.Is(err, spectrum.ErrNotConverged) {
			return row{}, err
		}
		traces, fros = append(traces, h.Mean), append(fros, h.Scale)
		for ti, target := range o.target {
			hs[ti] = append(hs[ti], sq(sd(h.Samples)/(target*h.Scale)))
		}
		for i, k := range o.ks {
			p, err := spectrum.HutchPP(op, fixed(k), rng)
			if err != nil && !errors.Is(err, spectrum.ErrNotConverged) {
				return row{}, err
			}
			for ti, target := range o.target {
				pps[i][ti] = append(pps[i][ti], float64(min(k, op.Dim())+p.Rank)+sq(sd(p.Samples)/(target*h.Scale)))
			}
		}
	}
	r := row{trace: median(traces), fro: median(fros)}
	for ti := range o.target {
		r.hutch = append(r.hutch, median(hs[ti]))
	}
	r.pp = make([][]float64, len(o.ks))
	for i := range o.ks {
		for ti := range o.target {
			r.pp[i] = append(r.pp[i], median(pps[i][ti]))
		}
	}
	return r, nil
}

func sq(x float64) float64 { return x * x }

func sd(x []float64) float64 {
	var m, ss float64
	for _, v := range x {
		m += v
	}
	m /= float64(len(x))
	for _, v := range x {
		ss += (v - m) * (v - m)
	}
	return math.Sqrt(ss / float64(len(x)-1))
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// checkpointEngine loads dir/checkpoint.gob (written by cmd/train), builds
// its model with the checkpoint's parameters, and sets the first training
// batch of the synthetic dataset (the default run's data, normalised as the
// run did).
func checkpointEngine(dir string, batch int) (*hessian.Engine, string, error) {
	path := filepath.Join(dir, "checkpoint.gob")
	ck, err := train.LoadCheckpoint(path)
	if err != nil {
		return nil, "", err
	}
	spec, err := nn.ParseModel([]byte(ck.Model))
	if err != nil {
		return nil, "", fmt.Errorf("%s: model: %w", path, err)
	}
	dt := tensor.Float32
	if ck.Dtype == "float64" {
		dt = tensor.Float64
	}
	m, err := nn.New(spec, dt, rand.New(rand.NewPCG(1, 1)), 0)
	if err != nil {
		return nil, "", err
	}
	values := map[string][]float64{}
	for _, p := range ck.Params {
		if p.Slot == "value" {
			values[p.Param] = p.Float64s()
		}
	}
	for _, p := range m.Params() {
		v, ok := values[p.Name]
		if !ok || len(v) != p.Value.Shape().TotalSize() {
			return nil, "", fmt.Errorf("%s: no value of the right size for %q", path, p.Name)
		}
		switch d := p.Value.Data().(type) {
		case []float32:
			for i := range d {
				d[i] = float32(v[i])
			}
		case []float64:
			copy(d, v)
		}
	}
	trainDS, _, err := data.Synthetic(data.SyntheticConfig{})
	if err != nil {
		return nil, "", err
	}
	st := trainDS.Stats()
	it, err := data.NewIterator(trainDS, data.IterConfig{BatchSize: batch, DropLast: true, Dtype: dt, Norm: &st})
	if err != nil {
		return nil, "", err
	}
	if !it.Next() {
		return nil, "", fmt.Errorf("no batch of %d", batch)
	}
	b := it.Batch()
	eng, err := hessian.New(m, optim.Needs{HVP: true})
	if err != nil {
		return nil, "", err
	}
	if err := eng.SetBatch(b.X.Clone().(*tensor.Dense), append([]int(nil), b.Labels...)); err != nil {
		eng.Close()
		return nil, "", err
	}
	return eng, fmt.Sprintf("%s (step %d, batch %d)", filepath.Base(dir), ck.Step, batch), nil
}
