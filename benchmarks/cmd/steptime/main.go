// Command steptime measures the CPU time of curvopt's per-step workloads
// (the same ones as the benchmarks package: the engine's queries (grad, hvp,
// gnb) and every optimizer's full step, on the MLP and the CNN), in interleaved rounds, and
// prints the minimum and median per workload and their ratios to a
// reference workload.
//
// On a machine shared with other work, wall-clock benchmarks drift by 2x
// and more from one run to the next; the process's own CPU time (user +
// system, from getrusage) does not count the time other processes hold the
// CPU, and interleaving the workloads round by round exposes what drift
// remains. Run it with GOMAXPROCS=1 for single-thread costs (the kernels'
// goroutines then run one after another, so every CPU second is the step's):
//
//	GOMAXPROCS=1 go run ./benchmarks/cmd/steptime
//	GOMAXPROCS=1 go run ./benchmarks/cmd/steptime -run 'cnn/(grad|hvp|adam|adahessian)$' -rounds 15
//
// Times are CPU milliseconds per op. Ratios (median/median) are what to quote.
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/train"
	"gorgonia.org/tensor"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "steptime:", err)
		os.Exit(1)
	}
}

// workload is one timed operation.
type workload struct {
	name  string
	reps  int // ops per measurement
	f     func() error
	close func()
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("steptime", flag.ContinueOnError)
	pattern := fs.String("run", ".", "regexp selecting workloads (model/query or model/optimizer, e.g. 'cnn/(grad|hvp)$')")
	rounds := fs.Int("rounds", 10, "interleaved rounds; min and median are over rounds")
	ref := fs.String("ref", "grad", "reference workload within each model for the ratio column")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 {
		return fmt.Errorf("-rounds %d: must be >= 1", *rounds)
	}
	re, err := regexp.Compile(*pattern)
	if err != nil {
		return fmt.Errorf("-run: %w", err)
	}
	var wls []workload
	defer func() {
		for _, w := range wls {
			w.close()
		}
	}()
	for _, m := range []struct {
		name  string
		spec  nn.DAG
		batch int
		reps  int
	}{{"mlp", nn.MLP(784, []int{128}, 10), 128, 30}, {"cnn", nn.CNN(3, 32, 10), 64, 3}} {
		add := func(name string, needs optim.Needs, f func(*hessian.Engine) (func() error, error)) error {
			full := m.name + "/" + name
			if !re.MatchString(full) && name != *ref {
				return nil
			}
			e, err := newEngine(m.spec, m.batch, needs)
			if err != nil {
				return fmt.Errorf("%s: %w", full, err)
			}
			op, err := f(e)
			if err != nil {
				e.Close()
				return fmt.Errorf("%s: %w", full, err)
			}
			wls = append(wls, workload{name: full, reps: m.reps, f: op, close: func() { e.Close() }})
			return nil
		}
		err := add("grad", optim.Needs{}, func(e *hessian.Engine) (func() error, error) {
			return func() error { _, err := e.LossGrad(); return err }, nil
		})
		if err != nil {
			return err
		}
		err = add("hvp", optim.Needs{HVP: true}, func(e *hessian.Engine) (func() error, error) {
			v, o := optim.Like(e.Params()), optim.Like(e.Params())
			if err := optim.NewRandomProbes(optim.Gaussian, 1).Fill(v); err != nil {
				return nil, err
			}
			return func() error { return e.HVP(v, o) }, nil
		})
		if err != nil {
			return err
		}
		err = add("gnb", optim.Needs{SampledGrad: true}, func(e *hessian.Engine) (func() error, error) {
			o := optim.Like(e.Params())
			return func() error { return e.SampledGrad(o) }, nil
		})
		if err != nil {
			return err
		}
		for _, name := range train.Optimizers() {
			opt, err := train.NewOptimizer(name, nil, m.batch, 1)
			if err != nil {
				return err
			}
			err = add(name, opt.Needs(), func(e *hessian.Engine) (func() error, error) {
				return func() error {
					_, err := train.Step(e, opt, 0)
					return err
				}, nil
			})
			if err != nil {
				return err
			}
		}
	}
	for _, w := range wls { // warm-up: compile, allocate, first-step cases
		for i := 0; i < 3; i++ {
			if err := w.f(); err != nil {
				return fmt.Errorf("%s: %w", w.name, err)
			}
		}
	}
	res := make([][]float64, len(wls))
	for r := 0; r < *rounds; r++ {
		for i, w := range wls {
			t0 := cpuTime()
			for k := 0; k < w.reps; k++ {
				if err := w.f(); err != nil {
					return fmt.Errorf("%s: %w", w.name, err)
				}
			}
			res[i] = append(res[i], float64(cpuTime()-t0)/float64(w.reps)/1e6)
		}
	}
	meds := map[string]float64{}
	for i, w := range wls {
		sort.Float64s(res[i])
		meds[w.name] = res[i][len(res[i])/2]
	}
	fmt.Fprintf(out, "CPU ms per op over %d interleaved rounds (GOMAXPROCS from the environment)\n\n", *rounds)
	fmt.Fprintf(out, "| workload | min ms | median ms | median / %s |\n|---|---|---|---|\n", *ref)
	for i, w := range wls {
		if !re.MatchString(w.name) {
			continue
		}
		model, _, _ := strings.Cut(w.name, "/")
		ratio := "—"
		if r, ok := meds[model+"/"+*ref]; ok && r > 0 {
			ratio = fmt.Sprintf("%.2fx", meds[w.name]/r)
		}
		fmt.Fprintf(out, "| %s | %.3f | %.3f | %s |\n", w.name, res[i][0], meds[w.name], ratio)
	}
	return nil
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// newEngine builds spec in float32 with a fixed seed, an engine that answers
// needs, and binds one fixed random batch, as the benchmarks package does.
func newEngine(spec nn.DAG, batch int, needs optim.Needs) (*hessian.Engine, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	m, err := nn.New(spec, tensor.Float32, rng, 0)
	if err != nil {
		return nil, err
	}
	e, err := hessian.New(m, needs, hessian.WithRand(rand.New(rand.NewPCG(3, 4))))
	if err != nil {
		return nil, err
	}
	x := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(append([]int{batch}, m.InputShape()...)...))
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = rng.Float32()
	}
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = rng.IntN(m.Classes())
	}
	if err := e.SetBatch(x, labels); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}
