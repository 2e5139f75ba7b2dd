//! Disclosure control for published count tables (Regulation 2018/1725 Art. 13, recital 16).
//!
//! A cell that counts 1 to k-1 events or persons is suppressed (*primary* suppression) and
//! printed `:c`. Where the table's row and column totals are published too, a suppressed cell
//! could be recovered by subtraction, so further cells are suppressed (*secondary*
//! suppression) until none can be.
//!
//! Why a graph: flip the sign of the totals and the table with its margins is an
//! (r+1)×(c+1) grid whose every row and column sums to zero. Published cells are constants;
//! suppressed cells are the unknowns of one equation per row and one per column. Draw each
//! suppressed cell as an edge between its row and its column: a suppressed value is
//! determined by the published ones exactly when its edge is a *bridge* of that graph (lies
//! on no cycle). On a cycle, adding +t and -t alternately round it changes no total (the graph
//! is bipartite, so cycles are even), so the value can be anything; on a bridge, summing the
//! equations of one side isolates it. Secondary suppression therefore adds the cheapest cells
//! that put every suppressed edge on a cycle.
//!
//! Zeros are published: they say that nobody is counted, which is what the table is for.
//! Cells of margins are suppressed like any other when small. A zero is never chosen as a
//! partner while a counted cell can close the cycle: every cell of a cycle of suppressed
//! cells then counts at least one, so the value of each can move by one up or down round
//! the cycle without any count falling below zero, and not even the bounds that counts are
//! never negative pin it.
//!
//! A view that shows part of a table ([`Protected::part`]) copies its cells and those of its
//! totals that are values of the table; it never protects a part on its own, which would
//! suppress other cells than the whole table does and let the two be combined.

use std::collections::VecDeque;
use std::fmt;

use crate::error::{Error, Result};

/// The smallest and largest threshold Custos accepts.
pub const K_RANGE: std::ops::RangeInclusive<u64> = 3..=10;

/// The default threshold (*default*: the law sets no number).
pub const DEFAULT_K: u64 = 5;

/// The rule applied, in words a report prints.
pub fn rule_text(k: u64) -> String {
    format!(
        "cells counting 1 to {} are suppressed (`:c`), and further cells where a suppressed value could \
         be recovered from the published totals (threshold k = {k}, a Custos default; \
         Regulation 2018/1725 Art. 13)",
        k - 1
    )
}

/// Checks a threshold given by a user.
pub fn threshold(k: u64) -> Result<u64> {
    if K_RANGE.contains(&k) {
        Ok(k)
    } else {
        Err(Error::Usage(format!(
            "disclosure threshold `{k}` is out of range: expected {} to {}",
            K_RANGE.start(),
            K_RANGE.end()
        )))
    }
}

/// One published cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The count, safe to publish.
    Count(u64),
    /// Suppressed: printed `:c`.
    Confidential,
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Count(n) => write!(f, "{n}"),
            Cell::Confidential => f.write_str(":c"),
        }
    }
}

impl serde::Serialize for Cell {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Cell::Count(n) => s.serialize_u64(*n),
            Cell::Confidential => s.serialize_str(":c"),
        }
    }
}

/// A count table as computed: rows × columns, and whether its totals are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels.
    pub cols: Vec<String>,
    /// `cells[row][col]`.
    pub cells: Vec<Vec<u64>>,
    /// Row totals, column totals and the grand total are published with the table.
    pub margins: bool,
}

/// A count table as it may be published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Protected {
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels.
    pub cols: Vec<String>,
    /// `cells[row][col]`.
    pub cells: Vec<Vec<Cell>>,
    /// Row totals, when published.
    pub row_totals: Option<Vec<Cell>>,
    /// Column totals, when published.
    pub col_totals: Option<Vec<Cell>>,
    /// The grand total, when published.
    pub total: Option<Cell>,
    /// The threshold applied.
    pub k: u64,
    /// Cells suppressed because they were small.
    pub primary: usize,
    /// Cells suppressed so that no small one can be recovered.
    pub secondary: usize,
}

impl Protected {
    /// The part of the table of the rows and columns `keep_row` and `keep_col` keep, every
    /// value a copy of one the whole table publishes: cells as they are; a total of the part
    /// only where it is one of the table's (the part keeps every column, or a single one, of
    /// the lines it sums), none otherwise. A part that keeps no row or no column counts
    /// nobody: its total is zero. `primary` and `secondary` stay those of the whole table.
    pub fn part(&self, keep_row: impl Fn(&str) -> bool, keep_col: impl Fn(&str) -> bool) -> Protected {
        let ri: Vec<usize> = (0..self.rows.len()).filter(|&i| keep_row(&self.rows[i])).collect();
        let ci: Vec<usize> = (0..self.cols.len()).filter(|&j| keep_col(&self.cols[j])).collect();
        let (all_r, all_c) = (ri.len() == self.rows.len(), ci.len() == self.cols.len());
        let cell = |i: usize, j: usize| self.cells[i][j];
        let row_totals = match (&self.row_totals, all_c, ci.as_slice()) {
            (_, _, [j]) => Some(ri.iter().map(|&i| cell(i, *j)).collect()),
            (Some(t), true, _) => Some(ri.iter().map(|&i| t[i]).collect()),
            _ => None,
        };
        let col_totals = match (&self.col_totals, all_r, ri.as_slice()) {
            (_, _, [i]) => Some(ci.iter().map(|&j| cell(*i, j)).collect()),
            (Some(t), true, _) => Some(ci.iter().map(|&j| t[j]).collect()),
            _ => None,
        };
        let total = if ri.is_empty() || ci.is_empty() {
            Some(Cell::Count(0))
        } else {
            match (ri.as_slice(), ci.as_slice()) {
                ([i], [j]) => Some(cell(*i, *j)),
                ([i], _) if all_c => self.row_totals.as_ref().map(|t| t[*i]),
                (_, [j]) if all_r => self.col_totals.as_ref().map(|t| t[*j]),
                _ if all_r && all_c => self.total,
                _ => None,
            }
        };
        Protected {
            rows: ri.iter().map(|&i| self.rows[i].clone()).collect(),
            cols: ci.iter().map(|&j| self.cols[j].clone()).collect(),
            cells: ri.iter().map(|&i| ci.iter().map(|&j| cell(i, j)).collect()).collect(),
            row_totals,
            col_totals,
            total,
            k: self.k,
            primary: self.primary,
            secondary: self.secondary,
        }
    }

    /// How many of the values the table shows (cells and totals) are suppressed.
    pub fn hidden(&self) -> usize {
        let margins =
            self.row_totals.iter().flatten().chain(self.col_totals.iter().flatten()).chain(&self.total);
        self.cells.iter().flatten().chain(margins).filter(|c| **c == Cell::Confidential).count()
    }
}

/// Applies small-cell and secondary suppression with threshold `k` to `table`.
pub fn protect(table: &Counts, k: u64) -> Protected {
    let (r, c) = (table.rows.len(), table.cols.len());
    // The working grid: the cells, then (with margins) a total column, a total row and the
    // grand total in the corner.
    let (gr, gc) = if table.margins { (r + 1, c + 1) } else { (r, c) };
    let mut value = vec![vec![0u64; gc]; gr];
    for (i, row) in table.cells.iter().enumerate().take(r) {
        for (j, &v) in row.iter().enumerate().take(c) {
            value[i][j] = v;
            if table.margins {
                value[i][c] += v;
                value[r][j] += v;
                value[r][c] += v;
            }
        }
    }
    let small = |v: u64| (1..k).contains(&v);
    let mut hidden: Vec<Vec<bool>> =
        value.iter().map(|row| row.iter().map(|&v| small(v)).collect()).collect();
    let primary = hidden.iter().flatten().filter(|&&h| h).count();
    if table.margins {
        secondary(&value, &mut hidden);
    }
    let total_hidden = hidden.iter().flatten().filter(|&&h| h).count();
    let cell = |i: usize, j: usize| if hidden[i][j] { Cell::Confidential } else { Cell::Count(value[i][j]) };
    Protected {
        rows: table.rows.clone(),
        cols: table.cols.clone(),
        cells: (0..r).map(|i| (0..c).map(|j| cell(i, j)).collect()).collect(),
        row_totals: table.margins.then(|| (0..r).map(|i| cell(i, c)).collect()),
        col_totals: table.margins.then(|| (0..c).map(|j| cell(r, j)).collect()),
        total: table.margins.then(|| cell(r, c)),
        k,
        primary,
        secondary: total_hidden - primary,
    }
}

/// Hides further cells of the zero-sum grid `value` until no hidden cell is a bridge of the
/// graph of hidden cells (rows and columns as nodes).
fn secondary(value: &[Vec<u64>], hidden: &mut [Vec<bool>]) {
    let (gr, gc) = (value.len(), value.first().map_or(0, Vec::len));
    // Hiding a cell costs its value; totals cost more than inner cells, which carry less;
    // a zero comes last, as a partner that lets the attacker bound its neighbours (above).
    let cost = |i: usize, j: usize| {
        let margin = i + 1 == gr || j + 1 == gc;
        (value[i][j] == 0, margin, value[i][j])
    };
    while let Some((bi, bj)) = bridge(hidden) {
        // The two sides the bridge joins, without it.
        hidden[bi][bj] = false;
        let side = components(hidden, gr, gc);
        hidden[bi][bj] = true;
        let (a, b) = (side[bi], side[gr + bj]);
        let mut best: Option<(usize, usize)> = None;
        for i in 0..gr {
            for j in 0..gc {
                let joins = (side[i] == a && side[gr + j] == b) || (side[i] == b && side[gr + j] == a);
                if !hidden[i][j] && joins && best.is_none_or(|(x, y)| cost(i, j) < cost(x, y)) {
                    best = Some((i, j));
                }
            }
        }
        // Where no counted cell closes a cycle, grow a side by its cheapest cell along the
        // bridge's row or column, and look again; a zero only when nothing else is left.
        let along_row = (0..gc).filter(|&j| !hidden[bi][j]).map(|j| (bi, j));
        let along_col = (0..gr).filter(|&i| !hidden[i][bj]).map(|i| (i, bj));
        let grow = along_row.chain(along_col).min_by_key(|&(i, j)| cost(i, j));
        let counted = |c: &(usize, usize)| value[c.0][c.1] > 0;
        let (i, j) = match (best, grow) {
            (Some(cell), _) if counted(&cell) => cell,
            (_, Some(cell)) if counted(&cell) => cell,
            (Some(cell), _) | (None, Some(cell)) => cell,
            // Every cell in both lines is hidden already: the bridge cannot exist.
            (None, None) => break,
        };
        hidden[i][j] = true;
    }
}

/// A hidden cell that lies on no cycle of the graph of hidden cells, if there is one.
fn bridge(hidden: &mut [Vec<bool>]) -> Option<(usize, usize)> {
    let (gr, gc) = (hidden.len(), hidden.first().map_or(0, Vec::len));
    for i in 0..gr {
        for j in 0..gc {
            if hidden[i][j] {
                hidden[i][j] = false;
                let side = components(hidden, gr, gc);
                hidden[i][j] = true;
                if side[i] != side[gr + j] {
                    return Some((i, j));
                }
            }
        }
    }
    None
}

/// The connected component of every node (rows `0..gr`, then columns `gr..gr+gc`) of the
/// graph whose edges are the hidden cells.
fn components(hidden: &[Vec<bool>], gr: usize, gc: usize) -> Vec<usize> {
    let mut side = vec![usize::MAX; gr + gc];
    let mut queue = VecDeque::new();
    for start in 0..gr + gc {
        if side[start] != usize::MAX {
            continue;
        }
        side[start] = start;
        queue.push_back(start);
        while let Some(n) = queue.pop_front() {
            let neighbours: Vec<usize> = if n < gr {
                (0..gc).filter(|&j| hidden[n][j]).map(|j| gr + j).collect()
            } else {
                (0..gr).filter(|&i| hidden[i][n - gr]).collect()
            };
            for m in neighbours {
                if side[m] == usize::MAX {
                    side[m] = start;
                    queue.push_back(m);
                }
            }
        }
    }
    side
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn counts(cells: Vec<Vec<u64>>, margins: bool) -> Counts {
        Counts {
            rows: (0..cells.len()).map(|i| format!("r{i}")).collect(),
            cols: (0..cells.first().map_or(0, Vec::len)).map(|j| format!("c{j}")).collect(),
            cells,
            margins,
        }
    }

    /// Every published value of `p`, with margins, as a grid with `None` where suppressed.
    fn grid(p: &Protected) -> Vec<Vec<Option<u64>>> {
        let open = |c: &Cell| match c {
            Cell::Count(n) => Some(*n),
            Cell::Confidential => None,
        };
        let mut g: Vec<Vec<Option<u64>>> = p.cells.iter().map(|row| row.iter().map(open).collect()).collect();
        if let (Some(rt), Some(ct), Some(t)) = (&p.row_totals, &p.col_totals, &p.total) {
            for (row, total) in g.iter_mut().zip(rt) {
                row.push(open(total));
            }
            let mut last: Vec<Option<u64>> = ct.iter().map(open).collect();
            last.push(open(t));
            g.push(last);
        }
        g
    }

    /// The cells with their row totals, column totals and grand total, as one grid.
    fn with_margins(cells: &[Vec<u64>]) -> Vec<Vec<u64>> {
        let c = cells.first().map_or(0, Vec::len);
        let mut g: Vec<Vec<u64>> = cells
            .iter()
            .map(|row| {
                let mut r = row.clone();
                r.push(row.iter().sum());
                r
            })
            .collect();
        g.push((0..=c).map(|j| g.iter().map(|r| r[j]).sum()).collect());
        g
    }

    #[test]
    fn a_part_copies_the_values_of_the_whole_table() {
        let p = protect(&counts(vec![vec![3, 20, 12], vec![7, 9, 40], vec![8, 30, 10]], true), 5);
        let row = p.part(|r| r == "r1", |_| true);
        assert_eq!(row.cells, vec![p.cells[1].clone()]);
        assert_eq!(row.total, Some(p.row_totals.as_ref().unwrap()[1]));
        assert_eq!(row.col_totals, Some(p.cells[1].clone()));
        let col = p.part(|_| true, |c| c == "c2");
        assert_eq!(col.total, Some(p.col_totals.as_ref().unwrap()[2]));
        let one = p.part(|r| r == "r0", |c| c == "c0");
        assert_eq!(one.total, Some(Cell::Confidential));
        // Two rows of three: their column totals are no values of the table, so none is shown.
        let two = p.part(|r| r != "r2", |_| true);
        assert_eq!((two.col_totals, two.total), (None, None));
        assert_eq!(two.row_totals.unwrap().len(), 2);
        let none = p.part(|r| r == "no such rule", |_| true);
        assert_eq!((none.rows.len(), none.total), (0, Some(Cell::Count(0))));
    }

    /// Rank of a matrix by Gaussian elimination over the rationals (f64 on small 0/±1
    /// matrices, where it is exact enough).
    fn rank(mut m: Vec<Vec<f64>>) -> usize {
        let cols = m.first().map_or(0, Vec::len);
        let mut rank = 0;
        for col in 0..cols {
            let Some(p) = (rank..m.len()).find(|&r| m[r][col].abs() > 1e-9) else { continue };
            m.swap(rank, p);
            let pivot = m[rank].clone();
            for (r, row) in m.iter_mut().enumerate() {
                if r != rank && row[col].abs() > 1e-9 {
                    let f = row[col] / pivot[col];
                    for (x, y) in row.iter_mut().zip(&pivot) {
                        *x -= f * y;
                    }
                }
            }
            rank += 1;
        }
        rank
    }

    /// The suppressed cells of `g` (a table with margins) whose value follows from the
    /// published ones: written as the linear system "each row of cells sums to its total, each
    /// column to its total, the totals to the grand total", a suppressed cell is determined
    /// when its unit vector lies in the row space of the system's matrix.
    fn determined(g: &[Vec<Option<u64>>]) -> Vec<(usize, usize)> {
        let (gr, gc) = (g.len(), g[0].len());
        let unknowns: Vec<(usize, usize)> =
            (0..gr).flat_map(|i| (0..gc).map(move |j| (i, j))).filter(|&(i, j)| g[i][j].is_none()).collect();
        let index = |cell: (usize, usize)| unknowns.iter().position(|&u| u == cell);
        let mut system = Vec::new();
        // Row i: cells (i, 0..gc-1) minus the total (i, gc-1) = 0; likewise columns.
        for i in 0..gr {
            let mut eq = vec![0.0; unknowns.len()];
            for j in 0..gc {
                if let Some(x) = index((i, j)) {
                    eq[x] = if j + 1 == gc { -1.0 } else { 1.0 };
                }
            }
            system.push(eq);
        }
        for j in 0..gc {
            let mut eq = vec![0.0; unknowns.len()];
            for i in 0..gr {
                if let Some(x) = index((i, j)) {
                    eq[x] = if i + 1 == gr { -1.0 } else { 1.0 };
                }
            }
            system.push(eq);
        }
        let base = rank(system.clone());
        unknowns
            .iter()
            .enumerate()
            .filter(|&(x, _)| {
                let mut with = system.clone();
                let mut unit = vec![0.0; unknowns.len()];
                unit[x] = 1.0;
                with.push(unit);
                rank(with) == base
            })
            .map(|(_, &cell)| cell)
            .collect()
    }

    #[test]
    fn small_cells_are_suppressed_and_zeros_published() {
        let p = protect(&counts(vec![vec![0, 3, 12], vec![7, 9, 40]], false), 5);
        assert_eq!(p.cells[0], vec![Cell::Count(0), Cell::Confidential, Cell::Count(12)]);
        assert_eq!((p.primary, p.secondary), (1, 0));
        assert_eq!(p.cells[0][1].to_string(), ":c");
    }

    #[test]
    fn a_lone_suppressed_cell_in_a_row_with_a_total_gets_a_partner() {
        let p = protect(&counts(vec![vec![3, 20, 12], vec![7, 9, 40], vec![8, 30, 10]], true), 5);
        let g = grid(&p);
        assert!(p.secondary >= 3, "{p:?}");
        assert!(determined(&g).is_empty(), "{g:?}");
        // Inner cells are cheaper partners than totals: the grand total stays published.
        assert_eq!(p.total, Some(Cell::Count(139)));
    }

    #[test]
    fn a_small_total_is_suppressed_too() {
        let p = protect(&counts(vec![vec![2, 1], vec![10, 30]], true), 5);
        let rt = p.row_totals.clone().unwrap();
        assert_eq!(rt[0], Cell::Confidential);
        assert!(determined(&grid(&p)).is_empty());
    }

    #[test]
    fn thresholds_outside_3_to_10_are_refused() {
        assert!(threshold(2).is_err());
        assert!(threshold(11).is_err());
        assert_eq!(threshold(3).unwrap(), 3);
        assert_eq!(threshold(10).unwrap(), 10);
    }

    #[test]
    fn random_tables_publish_no_small_cell_and_no_recoverable_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for case in 0..2000 {
            let (r, c) = (rng.random_range(1..7), rng.random_range(1..7));
            let k = rng.random_range(3..=10);
            // Mostly small counts, so that many cells need suppressing.
            let cells: Vec<Vec<u64>> = (0..r)
                .map(|_| {
                    (0..c)
                        .map(|_| match rng.random_range(0..10) {
                            0..3 => rng.random_range(0..k),
                            3 => 0,
                            _ => rng.random_range(k..60),
                        })
                        .collect()
                })
                .collect();
            let margins = rng.random_bool(0.8);
            let p = protect(&counts(cells.clone(), margins), k);
            let g = grid(&p);
            for row in &g {
                for v in row.iter().flatten() {
                    assert!(!(1..k).contains(v), "case {case}: {v} published with k = {k}: {g:?}");
                }
            }
            if margins {
                assert!(determined(&g).is_empty(), "case {case}: recoverable {:?} in {g:?}", determined(&g));
                // Every suppressed cell lies on a cycle of suppressed cells that count at
                // least one: it can move by one either way without a count below zero.
                let full = with_margins(&cells);
                let mut positive: Vec<Vec<bool>> = g
                    .iter()
                    .zip(&full)
                    .map(|(row, values)| row.iter().zip(values).map(|(c, v)| c.is_none() && *v > 0).collect())
                    .collect();
                let hidden_zero =
                    g.iter().flatten().zip(full.iter().flatten()).any(|(c, v)| c.is_none() && *v == 0);
                assert!(!hidden_zero, "case {case}: a zero suppressed as a partner in {g:?}");
                assert_eq!(
                    bridge(&mut positive),
                    None,
                    "case {case}: a suppressed cell on no cycle in {g:?}"
                );
            }
            // Published values are the true ones.
            for (i, row) in cells.iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    if let Some(x) = g[i][j] {
                        assert_eq!(x, v);
                    }
                }
            }
        }
    }
}
