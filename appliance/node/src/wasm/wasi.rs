//! The small subset of WASI preview 1 that Rust's wasm32-wasip1 standard
//! library links in. Modules get no files, sockets, environment or
//! arguments: a module importing any other WASI call is refused at load time,
//! with the import named (by `Linker::instantiate_pre`).

use super::{CallState, guest_memory, guest_range};
use wasmtime::{Caller, Linker};

const WASI: &str = "wasi_snapshot_preview1";
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_BADF: i32 = 8;
const ERRNO_INVAL: i32 = 28;
/// Most bytes one `random_get` fills (Rust's std asks for 16, getentropy
/// allows 256): a host call is not interrupted by the epoch deadline, so
/// its work must stay small.
const MAX_RANDOM_BYTES: i32 = 1 << 20;

fn write_u32(caller: &mut Caller<'_, CallState>, ptr: i32, v: u32) -> i32 {
    match guest_memory(caller) {
        Some(m) if m.write(&mut *caller, ptr as u32 as usize, &v.to_le_bytes()).is_ok() => ERRNO_SUCCESS,
        _ => ERRNO_FAULT,
    }
}

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, CallState>, fd: i32, iovs: i32, n: i32, written: i32| -> i32 {
            if fd != 1 && fd != 2 {
                return ERRNO_BADF;
            }
            let Some(mem) = guest_memory(&mut caller) else { return ERRNO_FAULT };
            let mut text = Vec::new();
            for i in 0..n.clamp(0, 64) {
                let mut iov = [0u8; 8];
                if mem.read(&caller, (iovs as u32 as usize) + i as usize * 8, &mut iov).is_err() {
                    return ERRNO_FAULT;
                }
                let ptr = u32::from_le_bytes(iov[..4].try_into().unwrap()) as i32;
                let len = u32::from_le_bytes(iov[4..].try_into().unwrap());
                // A log line, not a transfer: at most 64 KiB per call is kept.
                let keep = len.min(65536u32.saturating_sub(text.len() as u32)) as i32;
                let Some(r) = guest_range(mem.data_size(&caller), ptr, keep) else { return ERRNO_FAULT };
                text.extend_from_slice(&mem.data(&caller)[r]);
            }
            let module = caller.data().module.clone();
            let line = String::from_utf8_lossy(&text);
            // Panic messages arrive on stderr: worth a warning.
            if fd == 2 {
                tracing::warn!(%module, "stderr: {}", line.trim_end());
            } else {
                tracing::debug!(%module, "stdout: {}", line.trim_end());
            }
            write_u32(&mut caller, written, text.len() as u32)
        },
    )?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(WASI, name, |mut caller: Caller<'_, CallState>, count: i32, size: i32| -> i32 {
            match write_u32(&mut caller, count, 0) {
                ERRNO_SUCCESS => write_u32(&mut caller, size, 0),
                e => e,
            }
        })?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(WASI, name, |_: Caller<'_, CallState>, _: i32, _: i32| -> i32 { ERRNO_SUCCESS })?;
    }
    linker.func_wrap(WASI, "proc_exit", |_: Caller<'_, CallState>, code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg(format!("module exited with code {code}")))
    })?;
    linker.func_wrap(WASI, "sched_yield", |_: Caller<'_, CallState>| -> i32 { ERRNO_SUCCESS })?;
    linker.func_wrap(WASI, "random_get", |mut caller: Caller<'_, CallState>, buf: i32, len: i32| -> i32 {
        let Some(mem) = guest_memory(&mut caller) else { return ERRNO_FAULT };
        if len > MAX_RANDOM_BYTES {
            return ERRNO_INVAL;
        }
        // Filled in place, inside the guest's memory: nothing is allocated.
        let Some(r) = guest_range(mem.data_size(&caller), buf, len) else { return ERRNO_FAULT };
        for chunk in mem.data_mut(&mut caller)[r].chunks_mut(16) {
            chunk.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..chunk.len()]);
        }
        ERRNO_SUCCESS
    })?;
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut caller: Caller<'_, CallState>, _id: i32, _precision: i64, out: i32| -> i32 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            match guest_memory(&mut caller) {
                Some(m) if m.write(&mut caller, out as u32 as usize, &now.to_le_bytes()).is_ok() => ERRNO_SUCCESS,
                _ => ERRNO_FAULT,
            }
        },
    )?;
    Ok(())
}
