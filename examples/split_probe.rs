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
    if args.get(3).is_some_and(|a| a == "cut") {
        let e = 9 | 0x8000_0000;
        for t in [128usize, 256, 512] {
            let (mut kept, mut side) = (Vec::new(), Vec::new());
            let d = &patch.diff;
            let (mut i, mut last) = (0, 0usize);
            while i < d.len() {
                if d[i] != 0 {
                    kept.push(d[i]);
                    i += 1;
                    continue;
                }
                let z = d[i..].iter().take_while(|&&b| b == 0).count();
                if z >= t {
                    let cut = (z - t / 2) / 8 * 8;
                    write_varint(&mut side, (kept.len() - last) as u64);
                    write_varint(&mut side, (cut / 8) as u64);
                    kept.resize(kept.len() + z - cut, 0);
                    last = kept.len();
                } else {
                    kept.resize(kept.len() + z, 0);
                }
                i += z;
            }
            if std::env::var("GRID").is_ok() {
                for (lc, lp, pb) in [
                    (0, 0, 2),
                    (0, 1, 1),
                    (1, 1, 1),
                    (0, 0, 1),
                    (0, 2, 2),
                    (1, 0, 2),
                    (0, 0, 3),
                ] {
                    println!(
                        "  t{t} lc{lc} lp{lp} pb{pb}: {}",
                        lzma(&kept, e, lc, lp, pb, None)
                    );
                }
            }
            let t0 = std::time::Instant::now();
            let a = lzma(&kept, e, 0, 0, 2, None);
            let ta = t0.elapsed().as_secs_f64();
            let b = lzma(&side, e, 0, 0, 0, None);
            println!(
                "cut>={t}: kept {} -> {a} ({ta:.2}s), side {} -> {b}, total {}",
                kept.len(),
                side.len(),
                a + b
            );
        }
        return;
    }
    if args.get(3).is_some_and(|a| a == "zrc") {
        let mut coded = Vec::new();
        let mut i = 0;
        let d = &patch.diff;
        while i < d.len() {
            let z = d[i..].iter().take_while(|&&b| b == 0).count();
            let l = d[i + z..].iter().take_while(|&&b| b != 0).count();
            write_varint(&mut coded, z as u64);
            write_varint(&mut coded, l as u64);
            coded.extend_from_slice(&d[i + z..i + z + l]);
            i += z + l;
        }
        let e = 9 | 0x8000_0000;
        for (lc, lp, pb) in [
            (2, 0, 0),
            (0, 0, 0),
            (1, 0, 0),
            (3, 0, 0),
            (4, 0, 0),
            (2, 1, 0),
        ] {
            let t = std::time::Instant::now();
            let n = lzma(&coded, e, lc, lp, pb, None);
            println!(
                "zrc diff lc{lc} lp{lp} pb{pb}: {n:>9} {:.2}s",
                t.elapsed().as_secs_f64()
            );
        }
        for (lc, lp, pb) in [
            (3, 0, 2),
            (0, 0, 0),
            (4, 0, 0),
            (1, 0, 0),
            (2, 0, 0),
            (3, 0, 0),
        ] {
            let n = lzma(&patch.extra, e, lc, lp, pb, None);
            println!("extra 9e lc{lc} lp{lp} pb{pb}: {n:>9}");
        }
        for (lc, lp, pb) in [(0, 0, 2), (0, 0, 0), (1, 0, 0), (3, 0, 0), (1, 1, 1)] {
            let n = lzma(&ctrl, e, lc, lp, pb, None);
            println!("ctrl 9e lc{lc} lp{lp} pb{pb}: {n:>9}");
        }
        let cols =
            lzma(&cm, e, 0, 0, 0, None) + lzma(&cc, e, 0, 0, 0, None) + lzma(&cs, e, 0, 0, 0, None);
        println!("ctrl columnar 9e {cols}");
        return;
    }
    let cols =
        lzma(&cm, 6, 0, 0, 0, None) + lzma(&cc, 6, 0, 0, 0, None) + lzma(&cs, 6, 0, 0, 0, None);
    println!("ctrl columnar {cols}");
}
