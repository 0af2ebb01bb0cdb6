//! `auditlog tree RUN`: a run's parent chain (root first) and its child runs below it,
//! drawn as a tree. The demo draws its example run with the same code.
//!
//! # Invariants
//! - The walk is bounded: at most `PARENT_CHAIN_DEPTH_MAX` levels below the run and
//!   [`TREE_NODES_MAX`] runs in all, so a corrupted cycle or a huge fan-out still
//!   prints a bounded tree (what was left out is said).

use auditlog::limits::PARENT_CHAIN_DEPTH_MAX;
use auditlog::model::{Run, Status, Timestamp};
use auditlog::{AuditLog, Storage};
use serde::Serialize;

use crate::{CliResult, DirArg, OutputArg, print_json};

/// The most runs a tree shows below the run asked for.
pub const TREE_NODES_MAX: usize = 1000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id.
    run: String,
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    output: OutputArg,
}

/// One run of the tree, with its children oldest first.
#[derive(Debug, Serialize)]
pub struct Node {
    id: String,
    skill_id: String,
    status: Status,
    started_at: Timestamp,
    runtime_seconds: f64,
    children: Vec<Node>,
}

impl Node {
    fn of(run: &Run) -> Node {
        Node {
            id: run.id.clone(),
            skill_id: run.skill_id.clone(),
            status: run.status,
            started_at: run.started_at,
            runtime_seconds: run.runtime_seconds,
            children: Vec::new(),
        }
    }

    fn label(&self) -> String {
        format!(
            "{}  [{} · {} · {}]",
            self.id,
            self.skill_id,
            self.status,
            crate::runtime(self.runtime_seconds)
        )
    }
}

/// A run's place in the run tree.
#[derive(Debug, Serialize)]
pub struct RunTree {
    /// Root first; the run itself is the last.
    chain: Vec<Node>,
    /// The run with its descendants.
    tree: Node,
    /// Runs below the run that the bounds left out.
    n_not_shown: u64,
}

/// Reads the chain and the descendants of `run_id`.
pub fn load(log: &AuditLog, run_id: &str) -> CliResult<RunTree> {
    let chain = log.walk_parent_chain(run_id)?;
    let run = chain.last().expect("the chain ends with the run");
    let mut tree = Node::of(run);
    let mut budget = TREE_NODES_MAX;
    let mut n_not_shown = 0;
    add_children(log, &mut tree, 1, &mut budget, &mut n_not_shown)?;
    let chain = chain.iter().map(Node::of).collect();
    Ok(RunTree {
        chain,
        tree,
        n_not_shown,
    })
}

fn add_children(
    log: &AuditLog,
    node: &mut Node,
    depth: usize,
    budget: &mut usize,
    n_not_shown: &mut u64,
) -> CliResult<()> {
    let children = log.list_children_by_parent(&node.id)?;
    for child in &children {
        if *budget == 0 || depth > PARENT_CHAIN_DEPTH_MAX {
            *n_not_shown += 1;
            continue;
        }
        *budget -= 1;
        let mut child_node = Node::of(child);
        add_children(log, &mut child_node, depth + 1, budget, n_not_shown)?;
        node.children.push(child_node);
    }
    Ok(())
}

/// The tree as lines of text: ancestors, then the run (marked), then its descendants.
pub fn draw(tree: &RunTree) -> String {
    let mut out = String::new();
    let n_ancestors = tree.chain.len() - 1;
    for (depth, ancestor) in tree.chain[..n_ancestors].iter().enumerate() {
        let indent = "   ".repeat(depth.saturating_sub(1));
        let branch = if depth == 0 { "" } else { "└─ " };
        out.push_str(&format!("{indent}{branch}{}\n", ancestor.label()));
    }
    let indent = "   ".repeat(n_ancestors.saturating_sub(1));
    let branch = if n_ancestors == 0 { "" } else { "└─ " };
    out.push_str(&format!("{indent}{branch}{}  ◀\n", tree.tree.label()));
    let prefix = if n_ancestors == 0 {
        String::new()
    } else {
        "   ".repeat(n_ancestors)
    };
    draw_children(&tree.tree, &prefix, &mut out);
    if tree.n_not_shown > 0 {
        out.push_str(&format!(
            "… {} more run(s) below not shown (at most {TREE_NODES_MAX} runs, {PARENT_CHAIN_DEPTH_MAX} levels)\n",
            tree.n_not_shown
        ));
    }
    out
}

fn draw_children(node: &Node, prefix: &str, out: &mut String) {
    for (i, child) in node.children.iter().enumerate() {
        let last = i + 1 == node.children.len();
        let (branch, more) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        out.push_str(&format!("{prefix}{branch}{}\n", child.label()));
        draw_children(child, &format!("{prefix}{more}"), out);
    }
}

pub fn run(args: Args) -> CliResult {
    let log = args.dir.open_existing()?;
    let tree = load(&log, &args.run)?;
    if args.output.json {
        print_json(&tree)?;
    } else {
        print!("{}", draw(&tree));
    }
    log.close()?;
    Ok(std::process::ExitCode::SUCCESS)
}
