// Package lap solves the linear assignment problem (min-cost bipartite
// matching) with the Hungarian method in its shortest-augmenting-path form,
// O(n²m) for an n×m matrix. The tracker and the evaluation share it.
package lap

import "math"

// Solve returns, for each row of the rows×cols cost matrix, the column
// assigned to it, or -1. It assigns min(rows, cols) pairs with the least
// total cost. Callers that want "no match" to be possible give forbidden
// pairs a cost larger than any sum of allowed ones and drop them afterwards.
// Costs must be finite.
func Solve(cost [][]float64) []int {
	rows := len(cost)
	if rows == 0 {
		return nil
	}
	cols := len(cost[0])
	out := make([]int, rows)
	for i := range out {
		out[i] = -1
	}
	if cols == 0 {
		return out
	}
	if rows <= cols {
		for j, i := range solve(rows, cols, func(i, j int) float64 { return cost[i][j] }) {
			if i >= 0 {
				out[i] = j
			}
		}
		return out
	}
	// More rows than columns: solve the transpose so every column is assigned.
	for i, j := range solve(cols, rows, func(i, j int) float64 { return cost[j][i] }) {
		if i >= 0 {
			out[i] = j
		}
	}
	return out
}

// solve assigns every one of n rows to one of m >= n columns and returns,
// for each column, its row or -1. Potentials u, v keep reduced costs
// non-negative; each row is added by a Dijkstra-like search for the
// cheapest augmenting path (1-based arrays, index 0 is the virtual source).
func solve(n, m int, a func(i, j int) float64) []int {
	u := make([]float64, n+1)
	v := make([]float64, m+1)
	p := make([]int, m+1) // p[j]: row matched to column j (0 = none)
	way := make([]int, m+1)
	minv := make([]float64, m+1)
	used := make([]bool, m+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = math.Inf(1)
			used[j] = false
		}
		for {
			used[j0] = true
			i0, delta, j1 := p[j0], math.Inf(1), 0
			for j := 1; j <= m; j++ {
				if used[j] {
					continue
				}
				if cur := a(i0-1, j-1) - u[i0] - v[j]; cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			if j1 == 0 {
				// Only reachable with NaN or infinite costs: stop rather than loop.
				break
			}
			for j := 0; j <= m; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	res := make([]int, m)
	for j := 1; j <= m; j++ {
		res[j-1] = p[j] - 1
	}
	return res
}
