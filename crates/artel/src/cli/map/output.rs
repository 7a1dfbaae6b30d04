//! Where `artel map` writes: one JSON line per item, `{"index", "input", "ok" | "error",
//! "attempts", "ms"}`, in batches; failures also to their own file. The output is its own
//! journal: `--resume` reads the indexes already in it (a line cut short by a crash is
//! dropped), so each index is written once however often the run is resumed.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde_json::Value;

/// Lines written between flushes, at most.
const BATCH: usize = 1_000;

/// Longest a written line waits for its flush: what a crash can lose (and `--resume`
/// runs again).
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// How one item ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) index: u64,
    pub(crate) input: Value,
    pub(crate) result: Result<Value, String>,
    pub(crate) attempts: u32,
    pub(crate) ms: u64,
}

impl Outcome {
    /// Its output line; `index` first, so `--resume` reads it without parsing the rest.
    fn line(&self) -> String {
        let (key, value) = match &self.result {
            Ok(value) => ("ok", value.clone()),
            Err(error) => ("error", Value::String(error.clone())),
        };
        format!(
            "{{\"index\":{},\"input\":{},\"{key}\":{},\"attempts\":{},\"ms\":{}}}",
            self.index, self.input, value, self.attempts, self.ms
        )
    }
}

/// The output and failure files, written in batches, and the journal when there is one.
pub(crate) struct Sink {
    out: BufWriter<Box<dyn Write + Send>>,
    failures: Option<BufWriter<File>>,
    journal: Option<Journal>,
    unflushed: usize,
    flushed_at: std::time::Instant,
}

impl Sink {
    pub(crate) fn new(out: Box<dyn Write + Send>, failures: Option<File>, journal: Option<Journal>) -> Self {
        Self {
            out: BufWriter::with_capacity(1 << 16, out),
            failures: failures.map(BufWriter::new),
            journal,
            unflushed: 0,
            flushed_at: std::time::Instant::now(),
        }
    }

    pub(crate) fn write(&mut self, outcome: &Outcome) -> io::Result<()> {
        let line = outcome.line();
        writeln!(self.out, "{line}")?;
        if let (Err(_), Some(failures)) = (&outcome.result, &mut self.failures) {
            writeln!(failures, "{line}")?;
        }
        if let Some(journal) = &mut self.journal {
            journal.pending.push(outcome.index);
        }
        self.unflushed += 1;
        if self.unflushed >= BATCH || self.flushed_at.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.unflushed = 0;
        self.flushed_at = std::time::Instant::now();
        self.out.flush()?;
        if let Some(failures) = &mut self.failures {
            failures.flush()?;
        }
        // After the lines: an index in the journal is an index whose line was written.
        if let Some(journal) = &mut self.journal {
            journal.record()?;
        }
        Ok(())
    }
}

/// `--journal FILE`: the finished indexes as a bitset file (bit `i % 8` of byte `i / 8`),
/// so 15 million items take 2 MB and each batch rewrites only the bytes it touched.
pub(crate) struct Journal {
    file: File,
    bits: Vec<u8>,
    pending: Vec<u64>,
}

impl Journal {
    /// Opens `path`, and with `resume` reads the indexes it holds; starts it empty otherwise.
    pub(crate) fn open(path: &Path, resume: bool) -> io::Result<(Self, Done)> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(!resume).open(path)?;
        let mut bits = Vec::new();
        (&file).read_to_end(&mut bits)?;
        let mut done = Done::default();
        for (byte, value) in bits.iter().enumerate() {
            for bit in (0..8).filter(|bit| value & (1 << bit) != 0) {
                done.insert(byte as u64 * 8 + bit);
            }
        }
        Ok((Self { file, bits, pending: Vec::new() }, done))
    }

    fn record(&mut self) -> io::Result<()> {
        let (Some(&low), Some(&high)) = (self.pending.iter().min(), self.pending.iter().max()) else { return Ok(()) };
        let too_far = || io::Error::other("an item index too large for the journal");
        let (first, last) =
            (usize::try_from(low / 8).map_err(|_| too_far())?, usize::try_from(high / 8).map_err(|_| too_far())?);
        if self.bits.len() <= last {
            self.bits.resize(last + 1, 0);
        }
        for index in self.pending.drain(..) {
            if let Some(byte) = usize::try_from(index / 8).ok().and_then(|byte| self.bits.get_mut(byte)) {
                *byte |= 1 << (index % 8);
            }
        }
        self.file.write_all_at(&self.bits[first..=last], first as u64)
    }
}

/// Item indexes, one bit each: 15 million fit in 2 MB.
#[derive(Debug, Default)]
pub(crate) struct Done(Vec<u64>);

impl Done {
    pub(crate) fn insert(&mut self, index: u64) {
        let Ok(word) = usize::try_from(index / 64) else { return };
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (index % 64);
    }

    pub(crate) fn contains(&self, index: u64) -> bool {
        usize::try_from(index / 64)
            .ok()
            .and_then(|word| self.0.get(word))
            .is_some_and(|bits| bits & (1 << (index % 64)) != 0)
    }

    pub(crate) fn len(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// The indexes a previous run wrote to `path` (none when it does not exist). A last line
/// without its newline (the run died writing it) is cut off the file.
pub(crate) fn done_in(path: &Path) -> io::Result<Done> {
    let mut done = Done::default();
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(e),
    };
    let mut complete = 0u64;
    let mut reader = BufReader::new(&mut file);
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line)?;
        if read == 0 || !line.ends_with('\n') {
            break;
        }
        complete += read as u64;
        let index =
            line.strip_prefix("{\"index\":").and_then(|rest| rest.split(',').next()).and_then(|n| n.parse().ok());
        if let Some(index) = index {
            done.insert(index);
        }
    }
    drop(reader);
    if file.seek(SeekFrom::End(0))? != complete {
        file.set_len(complete)?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn resume_reads_the_indexes_written_and_drops_a_cut_line() {
        let dir = std::env::temp_dir().join(format!("artel-map-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("out.jsonl");
        let mut sink = Sink::new(Box::new(File::create(&path).expect("create")), None, None);
        for index in [0, 2, 130] {
            let outcome = Outcome { index, input: json!("x"), result: Ok(json!({"n": index})), attempts: 1, ms: 5 };
            sink.write(&outcome).expect("write");
        }
        let failed = Outcome { index: 7, input: json!("y"), result: Err("boom".into()), attempts: 3, ms: 9 };
        sink.write(&failed).expect("write");
        sink.flush().expect("flush");
        drop(sink);
        let written = std::fs::read_to_string(&path).expect("read");
        assert_eq!(written.lines().nth(3), Some(r#"{"index":7,"input":"y","error":"boom","attempts":3,"ms":9}"#));
        std::fs::write(&path, format!("{written}{{\"index\":9,\"inp")).expect("a cut line");
        let done = done_in(&path).expect("scan");
        assert!([0, 2, 130, 7].iter().all(|i| done.contains(*i)) && !done.contains(9) && !done.contains(1));
        assert_eq!(done.len(), 4);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), written, "the cut line is gone");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_journal_keeps_the_indexes_flushed_and_reads_them_back() {
        let dir = std::env::temp_dir().join(format!("artel-map-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("journal");
        let (journal, done) = Journal::open(&path, true).expect("open");
        assert_eq!(done.len(), 0, "a new journal is empty");
        let mut sink = Sink::new(Box::new(io::sink()), None, Some(journal));
        for index in [3, 0, 17, 1_000_000, 9] {
            let outcome = Outcome { index, input: json!(index), result: Ok(json!(1)), attempts: 1, ms: 1 };
            sink.write(&outcome).expect("write");
        }
        sink.flush().expect("flush");
        drop(sink);
        assert_eq!(std::fs::metadata(&path).expect("journal").len(), 1_000_000 / 8 + 1, "one bit an item");
        let (_, done) = Journal::open(&path, true).expect("reopen");
        assert!([0, 3, 9, 17, 1_000_000].iter().all(|i| done.contains(*i)));
        assert_eq!(done.len(), 5);
        let (_, done) = Journal::open(&path, false).expect("start over");
        assert_eq!(done.len(), 0, "without --resume the journal starts empty");
        let _ = std::fs::remove_dir_all(dir);
    }
}
