package train_test

import (
	"context"
	"fmt"
	"os"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/train"
)

// ExampleReadRunConfig trains one epoch into a directory, then continues
// the run to three epochs from its checkpoint, with the configuration the
// checkpoint recorded (as "cmd/train -resume -out DIR -epochs 3" does).
func ExampleReadRunConfig() {
	dir, err := os.MkdirTemp("", "curvopt-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	_, err = train.Run(context.Background(), train.Config{
		Model:     nn.MLP(3*32*32, []int{16}, 10),
		Data:      data.Spec{Kind: data.KindSynthetic, Synthetic: data.SyntheticConfig{Train: 256, Test: 64, Seed: 1}},
		Optimizer: "adam",
		Epochs:    1,
		BatchSize: 32,
		Schedule:  train.Schedule{Kind: "cosine"},
		OutDir:    dir,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := train.ReadRunConfig(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("recorded:", cfg.Optimizer, cfg.Epochs, "epoch, cosine over", cfg.Schedule.Total, "steps")

	cfg.Epochs = 3 // past the recorded cosine horizon: refused ...
	_, err = train.Run(context.Background(), cfg)
	fmt.Println("refused:", err != nil)
	cfg.Schedule.Total = 24 // ... unless the horizon is given
	res, err := train.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("steps:", res.Steps, "evaluations in this call:", len(res.EpochLog))
	// Output:
	// recorded: adam 1 epoch, cosine over 8 steps
	// refused: true
	// steps: 24 evaluations in this call: 2
}
