package lap

import (
	"math"
	"math/rand/v2"
	"testing"
)

// brute returns the least total cost over all assignments of min(r,c) pairs.
func brute(cost [][]float64) float64 {
	rows, cols := len(cost), len(cost[0])
	best := math.Inf(1)
	usedCol := make([]bool, cols)
	var rec func(i, assigned int, sum float64)
	rec = func(i, assigned int, sum float64) {
		if i == rows {
			if assigned == min(rows, cols) && sum < best {
				best = sum
			}
			return
		}
		if rows-i > min(rows, cols)-assigned { // this row may stay unassigned
			rec(i+1, assigned, sum)
		}
		for j := range cols {
			if !usedCol[j] {
				usedCol[j] = true
				rec(i+1, assigned+1, sum+cost[i][j])
				usedCol[j] = false
			}
		}
	}
	rec(0, 0, 0)
	return best
}

func TestSolveMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		rows, cols := 1+r.IntN(6), 1+r.IntN(6)
		cost := make([][]float64, rows)
		for i := range cost {
			cost[i] = make([]float64, cols)
			for j := range cost[i] {
				cost[i][j] = float64(r.IntN(20)) // ties on purpose
			}
		}
		got := Solve(cost)
		seen := map[int]bool{}
		var sum float64
		n := 0
		for i, j := range got {
			if j < 0 {
				continue
			}
			if seen[j] {
				t.Fatalf("trial %d: column %d assigned twice: %v", trial, j, got)
			}
			seen[j] = true
			sum += cost[i][j]
			n++
		}
		if n != min(rows, cols) {
			t.Fatalf("trial %d: %d pairs, want %d", trial, n, min(rows, cols))
		}
		if want := brute(cost); sum != want {
			t.Fatalf("trial %d: cost %v, optimum %v (%v on %v)", trial, sum, want, got, cost)
		}
	}
}

func TestSolveHandCase(t *testing.T) {
	// Greedy would take (0,0)=1 and then pay 10; optimum is 2+3.
	got := Solve([][]float64{{1, 2}, {3, 10}})
	if got[0] != 1 || got[1] != 0 {
		t.Fatalf("Solve = %v, want [1 0]", got)
	}
	if Solve(nil) != nil {
		t.Fatal("Solve(nil) should be nil")
	}
}
