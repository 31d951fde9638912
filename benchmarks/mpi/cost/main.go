//go:build mpi

// Command cost measures the all-reduce share of a data-parallel training
// step (README, "Data-parallel training on MPI"): run it under mpirun,
//
//	go build -tags mpi -o /tmp/cost ./benchmarks/mpi/cost
//	mpirun --allow-run-as-root --oversubscribe -np 2 /tmp/cost
//
// For each model (mlp, cnn, resnet20, gpt-tiny; Adam, so the all-reduce is
// the gradient's: 4 bytes a parameter in float32) rank 0 prints: the
// parameters D; the time of one all-reduce of D float32 on its own (after a
// barrier: transfer alone); the data-parallel step (mean of steps 2..S)
// and the all-reduce time inside it (waiting for the slowest rank
// included); a single process's step at the global batch B and at B/N,
// measured with the other ranks idle; and the model's prediction of the
// data-parallel step, T1(B/N) + all-reduce(D, N).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/mpi"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/train"
	"gorgonia.org/tensor"
)

type model struct {
	name  string
	dag   nn.DAG
	batch int
	text  bool
}

func main() {
	steps := flag.Int("steps", 6, "steps per run (the first, which compiles the graphs, is left out)")
	only := flag.String("model", "", "one model only (mlp, cnn, resnet20, gpt-tiny)")
	flag.Parse()
	w, err := mpi.Init()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := run(w, *steps, *only); err != nil {
		fmt.Fprintf(os.Stderr, "cost: rank %d: %v\n", w.Rank(), err)
		_ = w.Abort(1)
		os.Exit(1)
	}
	if err := w.Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(w *mpi.World, steps int, only string) error {
	n := w.Size()
	img, imgTest, err := data.Synthetic(data.SyntheticConfig{Train: 512, Test: 16, Seed: 1})
	if err != nil {
		return err
	}
	txt, txtTest, err := data.LoadSpec(data.Spec{Kind: data.KindText})
	if err != nil {
		return err
	}
	res20, err := nn.ResNet(20, 3, 32, 10)
	if err != nil {
		return err
	}
	gpt, err := nn.GPT(nn.GPTConfig{Vocab: txt.Classes, Context: 64})
	if err != nil {
		return err
	}
	models := []model{
		{"mlp", nn.MLP(3*32*32, []int{128}, 10), 64, false},
		{"cnn", nn.CNN(3, 32, 10), 64, false},
		{"resnet20", res20, 32, false},
		{"gpt-tiny", gpt, 16, true},
	}
	if w.Rank() == 0 {
		fmt.Printf("%d rank(s); Adam, float32, %d steps a run (the first left out); times in ms\n", n, steps)
		if n == 1 {
			fmt.Println("| model | D | batch B | one process at B | at ceil(B/2) | at ceil(B/3) |")
			fmt.Println("|---|---|---|---|---|---|")
		} else {
			fmt.Println("| model | D | batch B | all-reduce of 4D bytes alone | data-parallel step | its all-reduces | share |")
			fmt.Println("|---|---|---|---|---|---|---|")
		}
	}
	for _, m := range models {
		if only != "" && m.name != only {
			continue
		}
		cfg := train.Config{Model: m.dag, Train: img, Test: imgTest, Optimizer: "adam", Steps: steps, BatchSize: m.batch,
			EvalBatch: 16, Seed: 1, Dtype: tensor.Float32, Normalize: !m.text, DropLast: true}
		if m.text {
			cfg.Train, cfg.Test = txt, txtTest
		}
		if n == 1 { // the compute of one rank at each share of the batch
			var t [3]float64
			for k := range t {
				c := cfg
				c.BatchSize = (m.batch + k) / (k + 1)
				if t[k], err = meanStep(c); err != nil {
					return err
				}
			}
			fmt.Printf("| %s | %d | %d | %.1f | %.1f | %.1f |\n", m.name, params(m.dag), m.batch, t[0], t[1], t[2])
			continue
		}
		// The all-reduce alone, warmed up (the first call connects).
		buf := make([]float32, params(m.dag))
		for range 3 {
			if err := w.AllreduceFloat32(buf); err != nil {
				return err
			}
		}
		if err := w.Barrier(); err != nil {
			return err
		}
		const reps = 30
		t0 := time.Now()
		for range reps {
			if err := w.AllreduceFloat32(buf); err != nil {
				return err
			}
		}
		ar := ms(time.Since(t0)) / reps
		// The data-parallel run.
		dp := cfg
		dp.Comm = w
		res, err := train.Run(context.Background(), dp)
		if err != nil {
			return err
		}
		step, comm := 0.0, 0.0
		for i := 1; i < len(res.StepLog); i++ {
			step += res.StepLog[i].StepMS
			comm += res.CommMS[i]
		}
		step /= float64(len(res.StepLog) - 1)
		comm /= float64(len(res.StepLog) - 1)
		if w.Rank() == 0 {
			fmt.Printf("| %s | %d | %d | %.2f | %.1f | %.2f | %.1f%% |\n", m.name, params(m.dag), m.batch, ar, step, comm, 100*comm/step)
		}
	}
	return nil
}

// params is the model's parameter count.
func params(d nn.DAG) int {
	info, err := d.Check()
	if err != nil {
		return 0
	}
	n := 0
	for _, p := range info {
		k := 1
		for _, s := range p.Shape {
			k *= s
		}
		n += k
	}
	return n
}

func withSteps(c train.Config, s int) train.Config {
	c.Steps = s
	return c
}

// meanStep is a single process's mean step time, steps 2..S.
func meanStep(c train.Config) (float64, error) {
	res, err := train.Run(context.Background(), c)
	if err != nil {
		return 0, err
	}
	s := 0.0
	for i := 1; i < len(res.StepLog); i++ {
		s += res.StepLog[i].StepMS
	}
	return s / float64(len(res.StepLog)-1), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
