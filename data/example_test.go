package data_test

import (
	"fmt"

	"github.com/curvopt/curvopt/data"
	"gorgonia.org/tensor"
)

func Example() {
	train, test, err := data.Load("synthetic train=100 test=20 seed=1")
	if err != nil {
		panic(err)
	}
	fmt.Println(train.Len(), test.Len(), train.Classes, train.C, train.H, train.W)

	stats := train.Stats() // normalise both splits with training statistics
	it, err := data.NewIterator(train, data.IterConfig{
		BatchSize: 32,
		Shuffle:   true,
		DropLast:  true,
		Seed:      7,
		Dtype:     tensor.Float32,
		Norm:      &stats,
		Augment:   data.Augment{Pad: 4, Flip: true},
	})
	if err != nil {
		panic(err)
	}
	for epoch := 0; epoch < 2; epoch++ {
		batches := 0
		for it.Next() {
			b := it.Batch()
			if batches == 0 {
				fmt.Println(b.X.Shape(), b.Flat.Shape(), len(b.Labels))
			}
			batches++
		}
		fmt.Println("epoch", it.Epoch(), "batches", batches)
	}
	// Output:
	// 100 20 10 3 32 32
	// (32, 3, 32, 32) (32, 3072) 32
	// epoch 1 batches 3
	// (32, 3, 32, 32) (32, 3072) 32
	// epoch 2 batches 3
}
