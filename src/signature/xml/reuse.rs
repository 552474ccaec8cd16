//! Reuse of buffer allocations between verifications on the same thread.
//!
//! Why: verifying a small signed e-form reads a tree and canonicalises twice, and the
//! arenas, stacks and scratch vectors of that work were a few dozen `malloc`/`free` pairs
//! per verification — about a tenth of what the XML side costs beside the public-key
//! operation. Their elements borrow from the document being verified (`Cow<'t, str>`,
//! `&'t str`), so a buffer cannot simply be kept in a thread-local as it is; instead an
//! emptied `Vec` is recast to the same element type with other lifetimes ([`recast`]),
//! which keeps its allocation because the standard library collects an emptied
//! `vec::IntoIter` in place when the element layouts match. Nothing here is `unsafe`: if
//! the layouts did not match (or a future standard library stopped collecting in place),
//! the result would simply be a new, empty `Vec`, and only the reuse would be lost.
//!
//! Only empty buffers are kept, never their contents, so no data of one document can
//! reach the verification of another; and only small ones ([`KEEP_BYTES`]), so a thread
//! that once read a 10 MiB document does not hold its arenas afterwards.

use std::cell::RefCell;
use std::thread::LocalKey;

/// The largest allocation kept for reuse, in bytes: ample for a signed e-form, small
/// beside what a large document's arenas would pin per thread.
pub(crate) const KEEP_BYTES: usize = 64 << 10;

/// `v`, emptied, as a `Vec` of `U` keeping `v`'s allocation when `T` and `U` have the
/// same size and alignment (the same type under other lifetimes); otherwise an empty
/// `Vec` without allocation.
pub(crate) fn recast<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// True if an allocation of `v`'s size is worth keeping.
pub(crate) fn worth_keeping<T>(v: &Vec<T>) -> bool {
    v.capacity() > 0 && v.capacity().saturating_mul(size_of::<T>()) <= KEEP_BYTES
}

/// Takes the spare buffers of type `S` a thread keeps in `key` (the default, holding no
/// allocation, if there are none or the thread-local is being torn down).
pub(crate) fn take<S: Default + 'static>(key: &'static LocalKey<RefCell<S>>) -> S {
    key.try_with(|cell| cell.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

/// Hands spare buffers back to the thread's `key`, `merge` moving each one worth keeping
/// into the slot (where a slot is already filled, the buffer is simply dropped).
pub(crate) fn give<S: 'static>(key: &'static LocalKey<RefCell<S>>, merge: impl FnOnce(&mut S)) {
    let _ = key.try_with(|cell| {
        if let Ok(mut spare) = cell.try_borrow_mut() {
            merge(&mut spare);
        }
    });
}

/// Puts `v` (emptied, recast) into `slot` if it is worth keeping and the slot is empty.
pub(crate) fn keep<T, U>(slot: &mut Vec<U>, v: Vec<T>) {
    if slot.capacity() == 0 && worth_keeping(&v) {
        *slot = recast(v);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn recast_keeps_the_allocation_and_no_element() {
        let text = String::from("borrowed");
        let mut v: Vec<Cow<'_, str>> = Vec::with_capacity(32);
        v.push(Cow::Borrowed(&text));
        v.push(Cow::Owned("owned".into()));
        let at = v.as_ptr() as usize;
        let w: Vec<Cow<'static, str>> = recast(v);
        assert!(w.is_empty());
        // A property of the standard library this module relies on for speed only.
        assert_eq!(w.capacity(), 32, "in-place collection kept the allocation");
        assert_eq!(w.as_ptr() as usize, at);
    }

    #[test]
    fn recast_to_another_layout_allocates_nothing() {
        let v: Vec<u8> = Vec::with_capacity(16);
        let w: Vec<u64> = recast(v);
        assert_eq!(w.capacity(), 0);
    }

    #[test]
    fn only_small_buffers_are_kept() {
        let mut slot: Vec<u64> = Vec::new();
        keep(&mut slot, Vec::<u64>::with_capacity(KEEP_BYTES / 8 + 1));
        assert_eq!(slot.capacity(), 0);
        keep(&mut slot, Vec::<u64>::with_capacity(16));
        assert_eq!(slot.capacity(), 16);
        // A filled slot is not replaced.
        keep(&mut slot, Vec::<u64>::with_capacity(32));
        assert_eq!(slot.capacity(), 16);
    }

    #[test]
    fn take_and_give_round_trip() {
        thread_local! {
            static SPARE: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
        }
        assert_eq!(take(&SPARE).capacity(), 0);
        give(&SPARE, |slot| keep(slot, Vec::<u32>::with_capacity(8)));
        let v = take(&SPARE);
        assert_eq!(v.capacity(), 8);
        assert!(v.is_empty());
        assert_eq!(take(&SPARE).capacity(), 0, "taken once");
    }
}
