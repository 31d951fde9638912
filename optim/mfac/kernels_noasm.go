//go:build !amd64 || noasm

package mfac

const useAsm = false

func dot4F32(r0, r1, r2, r3, x *float32, n int, out *[4]float64) { panic("unreachable") }

func axpy4F32(acc *float64, r0, r1, r2, r3 *float32, y *float64, n int) { panic("unreachable") }
