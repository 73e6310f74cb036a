//! Prints the compressed size of each split stream under several LZMA settings.
//!
//!     cargo run --release --example split_probe -- OLD NEW

use liblzma::stream::{Action, Filters, LzmaOptions, Status, Stream};
use updraft::package::NoProgress;
use updraft::package::compress::write_varint;
use updraft::package::delta::diff::diff;

fn lzma(data: &[u8], preset: u32, lc: u32, lp: u32, pb: u32, nice: Option<u32>) -> usize {
    lzma_mf(data, preset, lc, lp, pb, nice, None, 0)
}

#[allow(clippy::too_many_arguments)]
fn lzma_mf(
    data: &[u8],
    preset: u32,
    lc: u32,
    lp: u32,
    pb: u32,
    nice: Option<u32>,
    mf: Option<liblzma::stream::MatchFinder>,
    depth: u32,
) -> usize {
    let mut opts = LzmaOptions::new_preset(preset).unwrap();
    if let Some(mf) = mf {
        opts.match_finder(mf);
    }
    if depth > 0 {
        opts.depth(depth);
    }
    let dict = data.len().next_power_of_two().clamp(4096, 1 << 26) as u32;
    opts.dict_size(dict);
    opts.literal_context_bits(lc);
    opts.literal_position_bits(lp);
    opts.position_bits(pb);
    if let Some(n) = nice {
        opts.nice_len(n);
    }
    let mut filters = Filters::new();
    filters.lzma2(&opts);
    let mut s = Stream::new_raw_encoder(&filters).unwrap();
    let mut out = Vec::with_capacity(data.len() + 1024);
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 65536 {
            out.reserve(1 << 20);
        }
        let before = s.total_in();
        let st = s.process_vec(input, &mut out, Action::Finish).unwrap();
        input = &input[(s.total_in() - before) as usize..];
        if st == Status::StreamEnd {
            return out.len();
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let old = std::fs::read(&args[1]).unwrap();
    let new = std::fs::read(&args[2]).unwrap();
    let t = std::time::Instant::now();
    let mut patch = diff(&old, &new, &mut NoProgress).unwrap();
    patch.diff = patch.plain_diff();
    println!(
        "diff {:.2}s entries {} diff {} extra {}",
        t.elapsed().as_secs_f64(),
        patch.entries.len(),
        patch.diff.len(),
        patch.extra.len()
    );
    let mut ctrl = Vec::new();
    let (mut cm, mut cc, mut cs) = (Vec::new(), Vec::new(), Vec::new());
    for e in &patch.entries {
        write_varint(&mut ctrl, e.mix);
        write_varint(&mut ctrl, e.copy);
        write_varint(&mut ctrl, zigzag(e.seek));
        write_varint(&mut cm, e.mix);
        write_varint(&mut cc, e.copy);
        write_varint(&mut cs, zigzag(e.seek));
    }
    let nz = patch.diff.iter().filter(|&&b| b != 0).count();
    println!("ctrl raw {} diff nonzero {}", ctrl.len(), nz);
    let quick = args.get(3).is_some_and(|a| a == "quick");
    let sets: &[(u32, u32, u32, u32)] = if quick {
        &[(6, 0, 0, 2), (6, 3, 0, 2)]
    } else {
        &[
            (6, 0, 0, 2),
            (6, 3, 0, 2),
            (6, 0, 0, 0),
            (6, 1, 1, 1),
            (6, 0, 2, 2),
            (6, 3, 1, 1),
            (6, 4, 0, 0),
            (9 | 0x8000_0000, 0, 0, 2),
            (9 | 0x8000_0000, 3, 0, 2),
        ]
    };
    for (name, data) in [
        ("ctrl", &ctrl),
        ("extra", &patch.extra),
        ("diff", &patch.diff),
    ] {
        if name == "diff" && data.len() > 8 << 20 && !quick {
            continue;
        }
        for &(p, lc, lp, pb) in sets {
            let t = std::time::Instant::now();
            let n = lzma(data, p, lc, lp, pb, None);
            println!(
                "{name:6} preset {:>2}{} lc{lc} lp{lp} pb{pb}: {n:>9}  {:.2}s",
                p & 0xff,
                if p & 0x8000_0000 != 0 { "e" } else { " " },
                t.elapsed().as_secs_f64()
            );
        }
    }
    if args.get(3).is_some_and(|a| a == "grid") {
        use liblzma::stream::MatchFinder as M;
        let e = 9 | 0x8000_0000;
        for (name, p, nice, mf, depth) in [
            ("9e", e, None, None, 0),
            ("6 nice273", 6, Some(273), None, 0),
            ("6 nice128", 6, Some(128), None, 0),
            ("9e depth32", e, None, None, 32),
            ("9e depth8", e, None, None, 8),
            ("6 hc4 nice273", 6, Some(273), Some(M::HashChain4), 0),
            ("6 bt2 nice273", 6, Some(273), Some(M::BinaryTree2), 0),
            ("6 bt3 nice273 d16", 6, Some(273), Some(M::BinaryTree3), 16),
        ] {
            let t = std::time::Instant::now();
            let n = lzma_mf(&patch.diff, p, 0, 0, 2, nice, mf, depth);
            println!("diff {name:20} {n:>9}  {:.2}s", t.elapsed().as_secs_f64());
        }
        return;
    }
    let cols =
        lzma(&cm, 6, 0, 0, 0, None) + lzma(&cc, 6, 0, 0, 0, None) + lzma(&cs, 6, 0, 0, 0, None);
    println!("ctrl columnar {cols}");
}
