package train_test

import (
	"context"
	"fmt"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/train"
)

// Example trains a small MLP on a slice of the built-in synthetic data with
// SophiaH for two epochs; cmd/train does the same from flags.
func Example() {
	res, err := train.Run(context.Background(), train.Config{
		Model:     nn.MLP(3*32*32, []int{16}, 10),
		Data:      data.Spec{Kind: data.KindSynthetic, Synthetic: data.SyntheticConfig{Train: 256, Test: 64, Seed: 1}},
		Optimizer: "sophiah",
		Hyper:     train.Hyper{"lr": 3e-4, "hessian_interval": 5},
		Epochs:    2,
		BatchSize: 32,
		Normalize: true,
		Seed:      1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("steps:", res.Steps, "evaluations:", len(res.EpochLog))
	fmt.Println("loss fell:", res.EpochLog[1].TrainLoss < res.EpochLog[0].TrainLoss)
	// Output:
	// steps: 16 evaluations: 2
	// loss fell: true
}
