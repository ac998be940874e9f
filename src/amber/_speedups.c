/* Hot loops of amber's Python code, in C. Each function here has a pure-Python twin that
 * stays the reference (and the fallback where this module was not built); the tests check
 * that both give the same results.
 *
 * plain_scan(pairs, tuples): formats._json._plain_scan_py.
 * tree_problem(...): security._guards._tree_problem_np.
 * plain_blobs(...): the checks of container._reader.BlobInfo for uncompressed entries.
 * find_checked(...): security._guards._find_checked_py.
 * text_offsets(...): handlers._pandas._text_offsets_py.
 * array_states_proven(...): security._arraystates._array_states_proven_py.
 * prefault(buffer): container._io._prefault_py (which does nothing: a hint only).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __linux__
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#endif

static inline int
plain_scalar(PyObject *v)
{
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyUnicode_Type || t == &PyLong_Type || v == Py_None || t == &PyBool_Type)
        return 1;
    if (t == &PyFloat_Type)
        return isfinite(PyFloat_AS_DOUBLE(v));
    return 0;
}

/* Consume the (key, value) pairs of the iterator ``pairs`` while each value is plain: a
 * str, an int, a bool, None, a finite float, or a tuple of those (whose key is appended to
 * ``tuples``). Return the first pair that is not plain, or None at the end. Exact types
 * only (a subclass of str or int is not plain), as in the Python version. */
static PyObject *
plain_scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "plain_scan(pairs, tuples) takes 2 arguments");
        return NULL;
    }
    PyObject *it = args[0], *tuples = args[1];
    if (!PyList_Check(tuples)) {
        PyErr_SetString(PyExc_TypeError, "tuples must be a list");
        return NULL;
    }
    if (!PyIter_Check(it)) {
        PyErr_Format(PyExc_TypeError, "'%.100s' object is not an iterator", Py_TYPE(it)->tp_name);
        return NULL;
    }
    iternextfunc next = Py_TYPE(it)->tp_iternext;
    for (;;) {
        PyObject *item = next(it);
        if (item == NULL) {
            if (PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_StopIteration))
                    return NULL;
                PyErr_Clear();
            }
            Py_RETURN_NONE;
        }
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) {
            PyObject *seq = PySequence_Tuple(item);
            Py_DECREF(item);
            if (seq == NULL)
                return NULL;
            if (PyTuple_GET_SIZE(seq) != 2) {
                Py_DECREF(seq);
                PyErr_SetString(PyExc_ValueError, "expected (key, value) pairs");
                return NULL;
            }
            item = seq;
        }
        PyObject *k = PyTuple_GET_ITEM(item, 0), *v = PyTuple_GET_ITEM(item, 1);
        if (plain_scalar(v)) {
            Py_DECREF(item);
            continue;
        }
        if (PyTuple_CheckExact(v)) {
            Py_ssize_t n = PyTuple_GET_SIZE(v), j;
            for (j = 0; j < n; j++)
                if (!plain_scalar(PyTuple_GET_ITEM(v, j)))
                    break;
            if (j == n) {
                int r = PyList_Append(tuples, k);
                Py_DECREF(item);
                if (r < 0)
                    return NULL;
                continue;
            }
        }
        PyObject *stop = PyTuple_Pack(2, k, v);
        Py_DECREF(item);
        return stop;
    }
}

static inline int64_t
rd_i64(const unsigned char *p)
{
    int64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* tree_problem(records, n, itemsize, left_at, right_at, feature_at, n_features, max_depth):
 * why the n scikit-learn node records (itemsize bytes each; native int64 child links and
 * feature at the given byte offsets) are unsafe, or None. One pass in node order: every
 * parent comes before its children, so when node i is reached the number of nodes linking
 * to it and its depth are final. The first bad node is the one the NumPy twin names. */
static PyObject *
tree_problem(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "tree_problem takes 8 arguments");
        return NULL;
    }
    Py_ssize_t v[7];
    for (int j = 0; j < 7; j++) {
        v[j] = PyLong_AsSsize_t(args[j + 1]);
        if (v[j] == -1 && PyErr_Occurred())
            return NULL;
    }
    Py_ssize_t n = v[0], size = v[1], lo = v[2], ro = v[3], fo = v[4], n_features = v[5], max_depth = v[6];
    if (n < 0 || size < 1 || lo < 0 || ro < 0 || fo < 0 || lo > size - 8 || ro > size - 8 || fo > size - 8) {
        PyErr_SetString(PyExc_ValueError, "tree_problem: bad record layout");
        return NULL;
    }
    if (n == 0)
        return PyUnicode_FromString("the tree has no nodes");
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (n > view.len / size) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "tree_problem: the buffer holds fewer records");
        return NULL;
    }
    const unsigned char *d = (const unsigned char *)view.buf;
    /* how many nodes link to each node: 0, 1, or 3 for more than one (x -> (x << 1 | 1) & 3
     * counts without branching and cannot wrap back to 1) */
    unsigned char *links = PyMem_Calloc((size_t)n, 1);
    int64_t *depth = PyMem_Malloc((size_t)n * sizeof(int64_t));
    if (links == NULL || depth == NULL) {
        PyMem_Free(links);
        PyMem_Free(depth);
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    PyObject *res = NULL;
    depth[0] = 0;
    links[0] = 1; /* the root: as if linked once */
    const uint64_t features = n_features < 0 ? 0 : (uint64_t)n_features; /* (no feature fits below 0) */
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned char *r = d + i * size;
        int64_t l = rd_i64(r + lo), rt = rd_i64(r + ro);
        if (links[i] != 1) {
            res = links[i] == 0 ? PyUnicode_FromFormat("no node links to node %zd", i)
                                : PyUnicode_FromFormat("node %zd is the child of more than one node", i);
            break;
        }
        if (l == -1 && rt == -1) {
            if (depth[i] > max_depth) {
                res = PyUnicode_FromFormat("leaf %zd lies %lld levels deep, below the tree's max_depth %zd", i,
                                           (long long)depth[i], max_depth);
                break;
            }
            continue;
        }
        /* i < child < n, as one unsigned comparison each (-1 and negatives wrap to huge) */
        uint64_t first = (uint64_t)i + 1, room = (uint64_t)(n - i - 1);
        if ((uint64_t)l - first >= room || (uint64_t)rt - first >= room || l == rt) {
            if (l == -1 || rt == -1)
                res = PyUnicode_FromFormat("node %zd has one child", i);
            else
                res = PyUnicode_FromFormat("node %zd links to a child outside nodes %zd..%zd", i, i + 1, n - 1);
            break;
        }
        int64_t f = rd_i64(r + fo);
        if ((uint64_t)f >= features) {
            res = PyUnicode_FromFormat("node %zd splits on feature %lld, outside 0..%zd", i, (long long)f,
                                       n_features - 1);
            break;
        }
        links[l] = (unsigned char)((links[l] << 1 | 1) & 3);
        links[rt] = (unsigned char)((links[rt] << 1 | 1) & 3);
        depth[l] = depth[rt] = depth[i] + 1;
    }
    PyMem_Free(links);
    PyMem_Free(depth);
    PyBuffer_Release(&view);
    if (res == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return res;
}


/* An exact, non-negative int that fits in 62 bits (so sums of a few cannot overflow), or -1. */
static inline long long
small_nonneg(PyObject *v)
{
    if (!PyLong_CheckExact(v))
        return -1;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || x < 0 || x > (1LL << 62)) {
        PyErr_Clear();
        return -1;
    }
    return x;
}

static PyObject *str_offset, *str_nbytes, *str_stored, *str_chunk, *str_chunks, *str_codec, *str_filter, *str_index,
    *str_starts;

/* The BlobInfo of one entry, or Py_None when the entry is not a plain, valid, uncompressed one
 * (the Python class then checks it and names what is wrong). NULL on a real error. */
static PyObject *
plain_blob(PyTypeObject *cls, Py_ssize_t index, PyObject *e, long long data_end, long long header, long long align,
           long long max_chunk)
{
    if (!PyDict_CheckExact(e))
        Py_RETURN_NONE;
    Py_ssize_t keys = PyDict_GET_SIZE(e);
    if (keys != 5) { /* codec and filter may be present as None */
        if (keys > 7)
            Py_RETURN_NONE;
        PyObject *c = PyDict_GetItemWithError(e, str_codec), *f = PyDict_GetItemWithError(e, str_filter);
        if (PyErr_Occurred())
            return NULL;
        if ((c && c != Py_None) || (f && f != Py_None) || 5 + (c != NULL) + (f != NULL) != keys)
            Py_RETURN_NONE;
    }
    PyObject *o = PyDict_GetItemWithError(e, str_offset), *n = PyDict_GetItemWithError(e, str_nbytes),
             *st = PyDict_GetItemWithError(e, str_stored), *ch = PyDict_GetItemWithError(e, str_chunk),
             *chunks = PyDict_GetItemWithError(e, str_chunks);
    if (PyErr_Occurred())
        return NULL;
    if (!o || !n || !st || !ch || !chunks || !PyList_CheckExact(chunks))
        Py_RETURN_NONE;
    long long offset = small_nonneg(o), nbytes = small_nonneg(n), stored = small_nonneg(st), chunk = small_nonneg(ch);
    if (offset < 0 || nbytes < 0 || stored < 0 || chunk < 0 || offset % align || offset < header ||
        offset + stored > data_end || chunk == 0 || chunk > max_chunk || stored != nbytes)
        Py_RETURN_NONE;
    Py_ssize_t k = PyList_GET_SIZE(chunks);
    if (k != (nbytes + chunk - 1) / chunk)
        Py_RETURN_NONE;
    PyObject *starts = PyList_New(k + 1);
    if (!starts)
        return NULL;
    long long pos = offset;
    PyObject *first = PyLong_FromLongLong(pos);
    if (!first)
        goto fail;
    PyList_SET_ITEM(starts, 0, first);
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *c = PyList_GET_ITEM(chunks, i);
        if (!PyList_CheckExact(c) || PyList_GET_SIZE(c) != 2 || !PyLong_CheckExact(PyList_GET_ITEM(c, 1)))
            goto plain_no;
        long long ln = small_nonneg(PyList_GET_ITEM(c, 0));
        if (ln < 0 || (i < k - 1 && ln != chunk) || ln > chunk)
            goto plain_no;
        pos += ln;
        PyObject *p = PyLong_FromLongLong(pos);
        if (!p)
            goto fail;
        PyList_SET_ITEM(starts, i + 1, p);
    }
    if (pos - offset != stored)
        goto plain_no;
    PyObject *b = cls->tp_alloc(cls, 0);
    if (!b)
        goto fail;
    PyObject *idx = PyLong_FromSsize_t(index);
    if (!idx || PyObject_SetAttr(b, str_index, idx) < 0 || PyObject_SetAttr(b, str_offset, o) < 0 ||
        PyObject_SetAttr(b, str_nbytes, n) < 0 || PyObject_SetAttr(b, str_stored, st) < 0 ||
        PyObject_SetAttr(b, str_codec, Py_None) < 0 || PyObject_SetAttr(b, str_filter, Py_None) < 0 ||
        PyObject_SetAttr(b, str_chunk, ch) < 0 || PyObject_SetAttr(b, str_chunks, chunks) < 0 ||
        PyObject_SetAttr(b, str_starts, starts) < 0) {
        Py_XDECREF(idx);
        Py_DECREF(b);
        goto fail;
    }
    Py_DECREF(idx);
    Py_DECREF(starts);
    return b;
plain_no:
    Py_DECREF(starts);
    Py_RETURN_NONE;
fail:
    Py_DECREF(starts);
    return NULL;
}

/* plain_blobs(cls, entries, data_end, header_size, align, max_chunk) -> list: for each entry
 * of the blob table, a ``cls`` instance with its slots set when the entry is a plain valid
 * uncompressed one, else None (the Python constructor checks that entry). */
static PyObject *
plain_blobs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyType_Check(args[0]) || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "plain_blobs(cls, entries: list, data_end, header_size, align, max_chunk)");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    long long v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = PyLong_AsLongLong(args[2 + i]);
        if (v[i] == -1 && PyErr_Occurred())
            return NULL;
    }
    if (v[2] <= 0) {
        PyErr_SetString(PyExc_ValueError, "align must be positive");
        return NULL;
    }
    PyObject *entries = args[1];
    Py_ssize_t m = PyList_GET_SIZE(entries);
    PyObject *out = PyList_New(m);
    if (!out)
        return NULL;
    for (Py_ssize_t i = 0; i < m; i++) {
        PyObject *b = plain_blob(cls, i, PyList_GET_ITEM(entries, i), v[0], v[1], v[2], v[3]);
        if (!b) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, b);
    }
    return out;
}

/* ---- find_checked: the object-graph walk of security._guards ---------------------------- */

/* A set of object addresses: open addressing, linear probing, grown at half full. */
typedef struct {
    uintptr_t *slots;
    size_t cap, used;
} ptrset;

static int
ptrset_add(ptrset *s, uintptr_t p) /* 1 added, 0 present, -1 no memory */
{
    if (2 * (s->used + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        uintptr_t *slots = PyMem_Calloc(cap, sizeof(uintptr_t));
        if (!slots)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            uintptr_t q = s->slots[i];
            if (q) {
                size_t j = (q >> 4) * 11400714819323198485ull & (cap - 1);
                while (slots[j])
                    j = (j + 1) & (cap - 1);
                slots[j] = q;
            }
        }
        PyMem_Free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    size_t j = (p >> 4) * 11400714819323198485ull & (s->cap - 1);
    while (s->slots[j]) {
        if (s->slots[j] == p)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = p;
    s->used++;
    return 1;
}

typedef struct {
    PyObject *stack;           /* list */
    PyTypeObject **atoms;
    Py_ssize_t n_atoms;
} walkstate;

static inline int
is_atom(walkstate *w, PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    for (Py_ssize_t i = 0; i < w->n_atoms; i++)
        if (t == w->atoms[i])
            return 1;
    return 0;
}

static int
visit_push(PyObject *o, void *arg)
{
    walkstate *w = (walkstate *)arg;
    if (o == NULL || is_atom(w, o))
        return 0;
    return PyList_Append(w->stack, o);
}

/* Does a dtype refer to other objects: fields, metadata or a subarray (1), or not (0), -1 on
 * error (security._guards._dtype_refers). */
static int
dtype_refers(PyObject *dtype)
{
    static const char *const attrs[] = {"names", "metadata", "subdtype"};
    for (int i = 0; i < 3; i++) {
        PyObject *v = PyObject_GetAttrString(dtype, attrs[i]);
        if (v == NULL)
            return -1;
        int some = v != Py_None;
        Py_DECREF(v);
        if (some)
            return 1;
    }
    return 0;
}

/* Push what a dtype refers to (security._guards._dtype_parts: its metadata, its fields and
 * its subarray, in that order), keeping each in ``keep``; -1 on error. */
static int
push_dtype_parts(PyObject *stack, PyObject *keep, PyObject *dtype)
{
    static const char *const attrs[] = {"metadata", "fields", "subdtype"};
    for (int i = 0; i < 3; i++) {
        PyObject *v = PyObject_GetAttrString(dtype, attrs[i]);
        if (v == NULL)
            return -1;
        int bad = v != Py_None && (PyList_Append(keep, v) < 0 || PyList_Append(stack, v) < 0);
        Py_DECREF(v);
        if (bad)
            return -1;
    }
    return 0;
}

/* Push an array's or a NumPy scalar's dtype when it refers to other objects, and return
 * whether it holds objects (1 or 0; -1 on error). */
static int
push_dtype_of(PyObject *stack, PyObject *o)
{
    PyObject *dtype = PyObject_GetAttrString(o, "dtype");
    if (dtype == NULL)
        return -1;
    int refers = dtype_refers(dtype);
    if (refers < 0 || (refers && PyList_Append(stack, dtype) < 0)) {
        Py_DECREF(dtype);
        return -1;
    }
    PyObject *has = PyObject_GetAttrString(dtype, "hasobject");
    Py_DECREF(dtype);
    if (has == NULL)
        return -1;
    int objects = PyObject_IsTrue(has);
    Py_DECREF(has);
    return objects;
}

/* find_checked(root, atoms, opaque, cache, missing, check_for, ndarray, dtype, generic) ->
 * [(check, obj)]: every object reachable from root through the references the garbage
 * collector sees (tp_traverse, as gc.get_referents) and those it does not (the items of
 * object arrays, their bases, the fields of structured NumPy scalars, what dtypes refer
 * to), whose type has a check: cache[type] when present (missing: not yet known), else
 * check_for(type). Objects of the types in ``atoms`` are skipped, those of (subclasses of)
 * ``opaque`` checked but not entered. What the walk makes itself (lists of items, a dtype's
 * fields) is kept until it ends: freed, it could lend its address to the next object made,
 * which would be taken as seen. */
static PyObject *
find_checked(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9 || !PyTuple_Check(args[1]) || !PyTuple_Check(args[2]) || !PyDict_Check(args[3]) ||
        !PyType_Check(args[6]) || !PyType_Check(args[7]) || !PyType_Check(args[8])) {
        PyErr_SetString(PyExc_TypeError, "find_checked(root, atoms: tuple, opaque: tuple, cache: dict, missing, "
                                         "check_for, ndarray: type, dtype: type, generic: type)");
        return NULL;
    }
    PyObject *atoms_t = args[1], *opaque = args[2], *cache = args[3], *missing = args[4], *check_for = args[5];
    PyTypeObject *ndarray = (PyTypeObject *)args[6], *dtype_type = (PyTypeObject *)args[7];
    PyTypeObject *generic = (PyTypeObject *)args[8];
    Py_ssize_t n_atoms = PyTuple_GET_SIZE(atoms_t), n_opaque = PyTuple_GET_SIZE(opaque);
    PyTypeObject *atoms[16];
    if (n_atoms > 16) {
        PyErr_SetString(PyExc_ValueError, "find_checked: at most 16 atom types");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n_atoms; i++) {
        if (!PyType_Check(PyTuple_GET_ITEM(atoms_t, i))) {
            PyErr_SetString(PyExc_TypeError, "find_checked: atoms must be types");
            return NULL;
        }
        atoms[i] = (PyTypeObject *)PyTuple_GET_ITEM(atoms_t, i);
    }
    for (Py_ssize_t i = 0; i < n_opaque; i++)
        if (!PyType_Check(PyTuple_GET_ITEM(opaque, i))) {
            PyErr_SetString(PyExc_TypeError, "find_checked: opaque must be types");
            return NULL;
        }
    walkstate w = {PyList_New(0), atoms, n_atoms};
    PyObject *found = PyList_New(0), *keep = PyList_New(0);
    ptrset seen = {NULL, 0, 0};
    if (!w.stack || !found || !keep)
        goto fail;
    if (PyList_Append(w.stack, args[0]) < 0)
        goto fail;
    while (PyList_GET_SIZE(w.stack)) {
        Py_ssize_t last = PyList_GET_SIZE(w.stack) - 1;
        PyObject *o = PyList_GET_ITEM(w.stack, last);
        Py_INCREF(o);
        if (PyList_SetSlice(w.stack, last, last + 1, NULL) < 0) {
            Py_DECREF(o);
            goto fail;
        }
        if (is_atom(&w, o)) {
            Py_DECREF(o);
            continue;
        }
        int added = ptrset_add(&seen, (uintptr_t)o);
        if (added <= 0) {
            Py_DECREF(o);
            if (added < 0) {
                PyErr_NoMemory();
                goto fail;
            }
            continue;
        }
        PyTypeObject *t = Py_TYPE(o);
        PyObject *check = PyDict_GetItemWithError(cache, (PyObject *)t); /* borrowed */
        if (check == NULL && PyErr_Occurred()) {
            Py_DECREF(o);
            goto fail;
        }
        if (check == NULL || check == missing) {
            check = PyObject_CallOneArg(check_for, (PyObject *)t);
            if (check == NULL) {
                Py_DECREF(o);
                goto fail;
            }
        } else
            Py_INCREF(check);
        if (check != Py_None) {
            PyObject *pair = PyTuple_Pack(2, check, o);
            if (!pair || PyList_Append(found, pair) < 0) {
                Py_XDECREF(pair);
                Py_DECREF(check);
                Py_DECREF(o);
                goto fail;
            }
            Py_DECREF(pair);
        }
        Py_DECREF(check);
        int skip = 0; /* (checked, but not entered) */
        for (Py_ssize_t i = 0; i < n_opaque && !skip; i++)
            skip = PyType_IsSubtype(t, (PyTypeObject *)PyTuple_GET_ITEM(opaque, i));
        if (skip) {
            Py_DECREF(o);
            continue;
        }
        if (PyType_IsSubtype(t, ndarray)) {
            /* (a structured dtype is checked: NumPy trusts a pickled one's fields) */
            int objects = push_dtype_of(w.stack, o);
            if (objects < 0) {
                Py_DECREF(o);
                goto fail;
            }
            if (objects) {
                /* the items as stored, read through the base class: a subclass may hide some
                 * (a masked array's tolist gives None where it is masked) */
                PyObject *plain = t == ndarray ? (Py_INCREF(o), o)
                                               : PyObject_CallMethod((PyObject *)ndarray, "view", "OO", o, ndarray);
                PyObject *flat = plain ? PyObject_CallMethod(plain, "ravel", "s", "K") : NULL;
                Py_XDECREF(plain);
                PyObject *items = flat ? PyObject_CallMethod(flat, "tolist", NULL) : NULL;
                Py_XDECREF(flat);
                if (!items || !PyList_Check(items)) {
                    Py_XDECREF(items);
                    Py_DECREF(o);
                    if (!PyErr_Occurred())
                        PyErr_SetString(PyExc_TypeError, "find_checked: tolist() gave no list");
                    goto fail;
                }
                Py_ssize_t m = PyList_GET_SIZE(w.stack);
                int bad = PyList_Append(keep, items) < 0 || PyList_SetSlice(w.stack, m, m, items) < 0;
                Py_DECREF(items);
                if (bad) {
                    Py_DECREF(o);
                    goto fail;
                }
            }
            /* the array it is a view of (reachable as .base, with items outside the view) */
            PyObject *base = PyObject_GetAttrString(o, "base");
            if (!base || (base != Py_None && PyList_Append(w.stack, base) < 0)) {
                Py_XDECREF(base);
                Py_DECREF(o);
                goto fail;
            }
            Py_DECREF(base);
            /* a subclass's own attributes (a masked array's mask and fill value) */
            if (t != ndarray && PyObject_IS_GC(o) && t->tp_traverse != NULL &&
                t->tp_traverse(o, visit_push, &w) != 0) {
                Py_DECREF(o);
                goto fail;
            }
            Py_DECREF(o);
            continue;
        }
        if (PyType_IsSubtype(t, dtype_type)) { /* (no referents for the garbage collector) */
            int bad = push_dtype_parts(w.stack, keep, o);
            Py_DECREF(o);
            if (bad < 0)
                goto fail;
            continue;
        }
        if (PyType_IsSubtype(t, generic)) { /* a NumPy scalar (no referents either): a structured one's fields */
            int objects = push_dtype_of(w.stack, o);
            PyObject *item = objects > 0 ? PyObject_CallMethod(o, "item", NULL) : NULL;
            int bad = objects < 0 || (objects > 0 && (!item || PyList_Append(keep, item) < 0 ||
                                                     PyList_Append(w.stack, item) < 0));
            Py_XDECREF(item);
            if (!bad) { /* the array it was made of: items beside its own, reachable as .base */
                PyObject *base = PyObject_GetAttrString(o, "base");
                if (base == NULL)
                    PyErr_Clear(); /* (as getattr(o, "base", None)) */
                else if (base != Py_None && PyList_Append(w.stack, base) < 0)
                    bad = 1;
                Py_XDECREF(base);
            }
            Py_DECREF(o);
            if (bad)
                goto fail;
            continue;
        }
        if (PyObject_IS_GC(o) && t->tp_traverse != NULL) {
            if (t->tp_traverse(o, visit_push, &w) != 0) {
                Py_DECREF(o);
                goto fail;
            }
        }
        Py_DECREF(o);
    }
    PyMem_Free(seen.slots);
    Py_DECREF(w.stack);
    Py_DECREF(keep);
    return found;
fail:
    PyMem_Free(seen.slots);
    Py_XDECREF(w.stack);
    Py_XDECREF(found);
    Py_XDECREF(keep);
    return NULL;
}

/* The loops below are built for AVX2 as well as the baseline where GCC can pick one at load
 * time (the baseline has no 64-bit vector compare: pandas' string columns have int64
 * offsets, checked 4 at a time with AVX2). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define AMBER_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define AMBER_CLONES
#endif

/* The OR of the n unaligned 8-byte words at t. */
AMBER_CLONES static uint64_t
or_words(const unsigned char *t, Py_ssize_t n)
{
    uint64_t high = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t w;
        memcpy(&w, t + 8 * i, 8);
        high |= w;
    }
    return high;
}

/* descends32/64(o, n): does any of the n + 1 values at o fall below the one before it? */
#define DESCENDS(name, type)                                                                                   \
    AMBER_CLONES static int name(const type *o, Py_ssize_t n)                                                  \
    {                                                                                                          \
        int bad = 0;                                                                                           \
        for (Py_ssize_t i = 0; i < n; i++)                                                                     \
            bad |= o[i + 1] < o[i];                                                                            \
        return bad;                                                                                            \
    }
DESCENDS(descends32, int32_t)
DESCENDS(descends64, int64_t)
#undef DESCENDS

/* text_offsets(offsets, data, n, width) -> 0, 1 or 2, for the n+1 native int32 (width 4)
 * or int64 (width 8) offsets of an Arrow string array into ``data``:
 * 0: the offsets are not a nondecreasing run from 0 or more up to at most len(data);
 * 1: they are, and the bytes between the first and the last offset are all ASCII;
 * 2: they are, and those bytes are not all ASCII (the caller checks them as UTF-8). */
static PyObject *
text_offsets(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "text_offsets(offsets, data, n, width) takes 4 arguments");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[2]), width = PyLong_AsSsize_t(args[3]);
    if ((n == -1 || width == -1) && PyErr_Occurred())
        return NULL;
    if (n < 0 || (width != 4 && width != 8)) {
        PyErr_SetString(PyExc_ValueError, "text_offsets: n must be >= 0 and width 4 or 8");
        return NULL;
    }
    Py_buffer ov, dv;
    if (PyObject_GetBuffer(args[0], &ov, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &dv, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&ov);
        return NULL;
    }
    long verdict = 0;
    if (n >= ov.len / width) /* fewer than n + 1 offsets */
        goto done;
    int64_t lo, hi;
    int bad;
    if (width == 4) {
        const int32_t *o = (const int32_t *)ov.buf;
        lo = o[0], hi = o[n];
        bad = descends32(o, n);
    }
    else {
        const int64_t *o = (const int64_t *)ov.buf;
        lo = o[0], hi = o[n];
        bad = descends64(o, n);
    }
    if (bad || lo < 0 || hi > (int64_t)dv.len)
        goto done;
    const unsigned char *t = (const unsigned char *)dv.buf + lo;
    Py_ssize_t len = (Py_ssize_t)(hi - lo);
    uint64_t high = or_words(t, len / 8);
    for (Py_ssize_t i = len / 8 * 8; i < len; i++)
        high |= t[i];
    verdict = (high & 0x8080808080808080ULL) ? 2 : 1;
done:
    PyBuffer_Release(&dv);
    PyBuffer_Release(&ov);
    return PyLong_FromLong(verdict);
}

static inline int64_t
rd_i64_le(const unsigned char *d, int w)
{
    uint64_t x = 0;
    for (int j = w - 1; j >= 0; j--)
        x = x << 8 | d[j];
    return (int64_t)x;
}

/* ---- array_states_proven(data, start) -> bool: security._arraystates._array_states_proven_py.
 * A value of the abstract unpickler is an int64: its kind in the low 4 bits, its payload
 * above them (an int's value, a string opcode's offset, a dtype's kind, or the number of a
 * list, a dict or a tuple in their tables). */
enum { AV_U, AV_SAFE, AV_INT, AV_LIST, AV_DICT, AV_TUPLE, AV_NONE, AV_STR, AV_DTYPE_CLASS, AV_DTYPE, AV_CODECS_ENCODE };
enum { D_OBJECT, D_PLAIN, D_VOID, D_UNKNOWN, D_DATETIME };
/* a DTYPE value's payload: its kind, and its item size where a structured dtype may hold it
 * as a field (fixed-size kinds as NumPy spells them) or for a void dtype, else -1 */
#define DT(kind, size) ((int64_t)(kind) | (((int64_t)(size) + 1) << 3))
#define DT_KIND(x) ((int)((x)&7))
#define DT_SIZE(x) (((x) >> 3) - 1)
#define AV(kind, x) ((int64_t)(((uint64_t)(int64_t)(x) << 4) | (uint64_t)(kind)))
#define AV_KIND(v) ((int)((uint64_t)(v)&15))
#define AV_X(v) ((int64_t)(v) >> 4)
#define AV_UNSET ((int64_t)15)
#define AS_CAP ((int64_t)1 << 62)
#define AS_NOT_A_LIST (-2)
#define AS_UNKNOWN (-1)
#define AS_OBJECT_FLAGS 63
#define AS_TUPLE_SLOTS 13 /* k, product, raw, shape, first, flags, subarray, fields, second, elsize, alignment, \
                           * names, strs_at */

typedef struct {
    int64_t *v;
    Py_ssize_t n, cap;
} i64vec;

static int
iv_push(i64vec *a, int64_t x)
{
    if (a->n == a->cap) {
        Py_ssize_t cap = a->cap ? a->cap * 2 : 64;
        int64_t *v = PyMem_Realloc(a->v, (size_t)cap * sizeof(int64_t));
        if (v == NULL)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

typedef struct {
    const unsigned char *d;
    Py_ssize_t n;
    i64vec stack, marks, memo;
    i64vec list_count, list_esc, dict_plain;
    i64vec tuples; /* AS_TUPLE_SLOTS per tuple */
    i64vec strs;   /* the items of tuples of 1 to 64 strings, one after another (strs_at) */
    i64vec dict_pairs_at, dict_pairs_n, dict_fills, dict_owned; /* per dict (see _Proof.dict_pairs) */
    i64vec pairs;  /* key, value, key, value... of the dicts' single fills */
    int64_t owned_next; /* the dict a void dtype takes as fields at this BUILD, or -1 */
    int broken;         /* a void dtype's fields dict touched again: the proof fails */
    Py_ssize_t memo_len;
    int lost_dtype_class; /* numpy.dtype used other than as the callable of a REDUCE */
} proof_t;

static void
proof_free(proof_t *p)
{
    i64vec *all[] = {&p->stack, &p->marks, &p->memo, &p->list_count, &p->list_esc,
                     &p->dict_plain, &p->tuples, &p->strs, &p->dict_pairs_at, &p->dict_pairs_n,
                     &p->dict_fills, &p->dict_owned, &p->pairs};
    for (size_t j = 0; j < sizeof(all) / sizeof(all[0]); j++)
        PyMem_Free(all[j]->v);
}

#define AS_T(pf, val) ((pf)->tuples.v + AS_TUPLE_SLOTS * AV_X(val))

static void
as_escape(proof_t *p, int64_t v)
{
    int k = AV_KIND(v);
    if (k == AV_DTYPE_CLASS)
        p->lost_dtype_class = 1;
    else if (k == AV_LIST)
        p->list_esc.v[AV_X(v)] = 1;
    else if (k == AV_DICT) {
        p->dict_plain.v[AV_X(v)] = 0;
        p->dict_pairs_at.v[AV_X(v)] = -1;
        if (p->dict_owned.v[AV_X(v)]) /* (a void dtype's fields, used again: they could change) */
            p->broken = 1;
    }
    else if (k == AV_TUPLE) {
        const int64_t *t = AS_T(p, v);
        if (t[2] >= 0)
            p->list_esc.v[t[2]] = 1;
        if (t[0] == 8 || t[0] == 9) {
            int64_t sub = t[6], fields = t[7];
            as_escape(p, sub);
            as_escape(p, fields);
        }
    }
}

/* the text of a STR value (its bytes, at most 64 of them), or NULL */
static const unsigned char *
as_text(proof_t *p, int64_t v, Py_ssize_t *len)
{
    if (AV_KIND(v) != AV_STR)
        return NULL;
    Py_ssize_t o = (Py_ssize_t)AV_X(v), a;
    unsigned op = p->d[o];
    uint64_t ln;
    if (op == 0x56 || op == 0x53) { /* UNICODE, STRING lines: plain text only (no escapes; STRING quoted) */
        Py_ssize_t lim = p->n - o - 1 < 66 ? p->n - o - 1 : 66;
        const unsigned char *t = p->d + o + 1, *nl = memchr(t, '\n', (size_t)lim);
        if (nl == NULL)
            return NULL;
        Py_ssize_t m = nl - t;
        if (op == 0x53) {
            if (m < 2 || t[0] != t[m - 1] || (t[0] != '\'' && t[0] != '"'))
                return NULL;
            t++;
            m -= 2;
        }
        if (memchr(t, '\\', (size_t)m) != NULL)
            return NULL;
        *len = m;
        return t;
    }
    if (op == 0x8C || op == 0x55) {
        ln = p->d[o + 1];
        a = o + 2;
    }
    else if (op == 0x58 || op == 0x54) {
        ln = (uint64_t)rd_i64_le(p->d + o + 1, 4);
        a = o + 5;
    }
    else {
        ln = (uint64_t)rd_i64_le(p->d + o + 1, 8);
        a = o + 9;
    }
    if (ln > 64)
        return NULL;
    *len = (Py_ssize_t)ln;
    return p->d + a;
}

static int
as_same(const unsigned char *t, Py_ssize_t len, const char *want)
{
    size_t w = strlen(want);
    return t != NULL && (size_t)len == w && memcmp(t, want, w) == 0;
}

/* what numpy.dtype(text, ...) makes, by its type string alone, as a DTYPE payload
 * (_dtype_kind: the item size of NumPy's own spelling of a fixed-size kind, i8 f4 u1 c16
 * b1, or of a void dtype, V64; else -1) */
static int64_t
as_dtype_kind(const unsigned char *t, Py_ssize_t len)
{
    if (t == NULL)
        return DT(D_UNKNOWN, -1);
    Py_ssize_t j = 0;
    if (len > 0 && (t[0] == '<' || t[0] == '>' || t[0] == '|' || t[0] == '='))
        j = 1;
    if (len - j >= 1 && t[j] == 'O') {
        Py_ssize_t r = len - j - 1;
        if (r == 0 || (r == 1 && (t[j + 1] == '8' || t[j + 1] == '4')))
            return DT(D_OBJECT, -1);
        return DT(D_UNKNOWN, -1);
    }
    if (len - j >= 2 && len - j <= 3 && strchr("biufc", t[j]) != NULL && t[j] != 0) {
        static const char *const sizes[] = {"1", "2", "4", "8", "16", "32"};
        static const int values[] = {1, 2, 4, 8, 16, 32};
        for (int k = 0; k < 6; k++)
            if ((Py_ssize_t)strlen(sizes[k]) == len - j - 1 && memcmp(t + j + 1, sizes[k], (size_t)(len - j - 1)) == 0)
                return DT(D_PLAIN, values[k]);
    }
    if (len - j >= 2 && len - j <= 10 && t[j] == 'V' && t[j + 1] >= '1' && t[j + 1] <= '9') {
        int64_t size = 0;
        Py_ssize_t q = j + 1;
        while (q < len && t[q] >= '0' && t[q] <= '9')
            size = size * 10 + (t[q++] - '0');
        if (q == len)
            return DT(D_VOID, size);
    }
    /* (not the flexible kinds S, a, c, U: NumPy takes their item size from a state) */
    if (len - j < 1 || strchr("?bBhHiIlLqQpPefdgFDGMmu", t[j]) == NULL || t[j] == 0)
        return DT(D_UNKNOWN, -1);
    Py_ssize_t q = j + 1, d0 = q;
    while (q < len && q - d0 < 4 && t[q] >= '0' && t[q] <= '9')
        q++;
    if (q < len && t[q] == '[') {
        q++;
        Py_ssize_t e0 = q;
        while (q < len && q - e0 < 4 && t[q] >= '0' && t[q] <= '9')
            q++;
        Py_ssize_t l0 = q;
        while (q < len && q - l0 < 2 && ((t[q] >= 'a' && t[q] <= 'z') || (t[q] >= 'A' && t[q] <= 'Z')))
            q++;
        if (q == l0 || q >= len || t[q] != ']')
            return DT(D_UNKNOWN, -1);
        q++;
    }
    return q == len ? DT(t[j] == 'M' || t[j] == 'm' ? D_DATETIME : D_PLAIN, -1) : DT(D_UNKNOWN, -1);
}

static int64_t
as_new_list(proof_t *p, int64_t count)
{
    if (iv_push(&p->list_count, count) < 0 || iv_push(&p->list_esc, 0) < 0)
        return -1;
    return AV(AV_LIST, p->list_count.n - 1);
}

/* items[0], items[1]... as keys and values (step 2) into target; -1: out of memory */
static int
as_set_items(proof_t *p, int64_t target, const int64_t *items, Py_ssize_t pairs)
{
    if (pairs && AV_KIND(target) != AV_DICT) /* a list's item set by index, or by a slice: its length may change */
        as_escape(p, target);
    if (AV_KIND(target) == AV_DICT) {
        Py_ssize_t i = (Py_ssize_t)AV_X(target);
        if (p->dict_owned.v[i])
            p->broken = 1;
        if (pairs && ++p->dict_fills.v[i] == 1) { /* its one fill: kept (see _Proof.dict_pairs) */
            p->dict_pairs_at.v[i] = p->pairs.n;
            p->dict_pairs_n.v[i] = pairs;
            for (Py_ssize_t j = 0; j < 2 * pairs; j++)
                if (iv_push(&p->pairs, items[j]) < 0)
                    return -1;
        }
        else if (pairs)
            p->dict_pairs_at.v[i] = -1;
    }
    for (Py_ssize_t j = 0; j < pairs; j++) {
        int64_t key = items[2 * j], value = items[2 * j + 1];
        as_escape(p, value);
        if (AV_KIND(target) == AV_DICT) {
            if (AV_KIND(key) == AV_U)
                p->dict_plain.v[AV_X(target)] = 0;
        }
        as_escape(p, key);
    }
    return 0;
}

static int64_t
as_new_dict(proof_t *p, const int64_t *items, Py_ssize_t pairs)
{
    if (iv_push(&p->dict_plain, 1) < 0 || iv_push(&p->dict_pairs_at, p->pairs.n) < 0 ||
        iv_push(&p->dict_pairs_n, 0) < 0 || iv_push(&p->dict_fills, 0) < 0 || iv_push(&p->dict_owned, 0) < 0)
        return -1;
    int64_t v = AV(AV_DICT, p->dict_plain.n - 1);
    if (as_set_items(p, v, items, pairs) < 0)
        return -1;
    return v;
}

static int64_t
as_tuple_of(proof_t *p, const int64_t *items, Py_ssize_t k)
{
    int64_t prod = 1;
    for (Py_ssize_t j = 0; j < k; j++) {
        int64_t x = items[j];
        if (AV_KIND(x) != AV_INT || AV_X(x) < 0) {
            prod = -1;
            break;
        }
        int64_t f = AV_X(x);
        prod = (f && prod > AS_CAP / f) ? AS_CAP : prod * f;
        if (prod > AS_CAP)
            prod = AS_CAP;
    }
    int64_t raw = AS_NOT_A_LIST, shape = -1;
    if (k == 4 || k == 5 || k == 7) {
        Py_ssize_t ra = k == 7 ? 4 : k - 1, sa = k == 7 ? 1 : k - 4;
        for (Py_ssize_t j = 0; j < k; j++)
            if (j != ra)
                as_escape(p, items[j]);
        int64_t r = items[ra], s = items[sa];
        if (AV_KIND(r) == AV_LIST)
            raw = AV_X(r);
        else if (AV_KIND(r) == AV_U)
            raw = AS_UNKNOWN;
        else
            as_escape(p, r);
        shape = AV_KIND(s) == AV_TUPLE ? AS_T(p, s)[1] : -1;
    }
    else
        for (Py_ssize_t j = 0; j < k; j++)
            if ((k != 8 && k != 9) || (j != 2 && j != 4))
                as_escape(p, items[j]);
    int dtype_state = k == 8 || k == 9;
    int64_t first = k ? items[0] : AV(AV_U, 0);
    int64_t flags = dtype_state && AV_KIND(items[7]) == AV_INT && AV_X(items[7]) >= 0 ? AV_X(items[7]) : -1;
    int64_t sub = dtype_state ? items[2] : AV(AV_U, 0), fields = dtype_state ? items[4] : AV(AV_U, 0);
    int64_t second = k >= 2 ? items[1] : AV(AV_U, 0);
    int64_t elsize = dtype_state ? items[5] : AV(AV_U, 0), align = dtype_state ? items[6] : AV(AV_U, 0);
    int64_t names = dtype_state ? items[3] : AV(AV_U, 0), strs_at = -1;
    if (k >= 1 && k <= 64) {
        Py_ssize_t j = 0;
        while (j < k && AV_KIND(items[j]) == AV_STR)
            j++;
        if (j == k) { /* a tuple of strings (a structured dtype's names): kept */
            strs_at = p->strs.n;
            for (j = 0; j < k; j++)
                if (iv_push(&p->strs, items[j]) < 0)
                    return -1;
        }
    }
    int64_t slots[AS_TUPLE_SLOTS] = {k, prod, raw, shape, first, flags, sub, fields, second, elsize, align, names,
                                     strs_at};
    for (int j = 0; j < AS_TUPLE_SLOTS; j++)
        if (iv_push(&p->tuples, slots[j]) < 0)
            return -1;
    return AV(AV_TUPLE, p->tuples.n / AS_TUPLE_SLOTS - 1);
}

/* the UTF-8 text of a STR value a binary unicode opcode pushed (at most 64 bytes), or NULL
 * (_utext: two strings are equal exactly when these are) */
static const unsigned char *
as_utext(proof_t *p, int64_t v, Py_ssize_t *len)
{
    if (AV_KIND(v) != AV_STR)
        return NULL;
    unsigned op = p->d[AV_X(v)];
    if (op != 0x8C && op != 0x58 && op != 0x8D)
        return NULL;
    return as_text(p, v, len);
}

static int
as_same_text(const unsigned char *a, Py_ssize_t la, const unsigned char *b, Py_ssize_t lb)
{
    return la == lb && memcmp(a, b, (size_t)la) == 0;
}

/* _Proof.void_ok: a void dtype's state t (8 items) on target */
static int
as_void_ok(proof_t *p, int64_t target, const int64_t *t)
{
    if (t[0] != 8 || AV_KIND(t[6]) != AV_NONE)
        return 0;
    int64_t elsize = t[9], align = t[10], names = t[11], fields = t[7];
    if (AV_KIND(elsize) != AV_INT || AV_X(elsize) != DT_SIZE(AV_X(target)) || AV_KIND(align) != AV_INT)
        return 0;
    int64_t a = AV_X(align);
    if (AV_KIND(names) == AV_NONE && AV_KIND(fields) == AV_NONE)
        return t[5] == 0 && a == 1;
    /* (NumPy's flags and alignment of fields of fixed-size dtypes: 16 and 1 packed, 144 and the
     * largest field's aligned; an alignment of 0 made copying divide by zero) */
    if (!((t[5] == 16 && a == 1) || (t[5] == 144 && (a == 1 || a == 2 || a == 4 || a == 8 || a == 16))))
        return 0;
    if (AV_KIND(names) != AV_TUPLE || AS_T(p, names)[12] < 0 || AV_KIND(fields) != AV_DICT)
        return 0;
    Py_ssize_t fi = (Py_ssize_t)AV_X(fields);
    int64_t at = p->dict_pairs_at.v[fi], npairs = p->dict_pairs_n.v[fi], m = AS_T(p, names)[0];
    const int64_t *nm = p->strs.v + AS_T(p, names)[12];
    if (at < 0 || npairs != m)
        return 0;
    const int64_t *pr = p->pairs.v + at;
    for (int64_t x = 0; x < m; x++) { /* the names: unicode strings, each once */
        Py_ssize_t lx = 0, ly = 0;
        const unsigned char *tx = as_utext(p, nm[x], &lx);
        if (tx == NULL)
            return 0;
        for (int64_t y = 0; y < x; y++) {
            const unsigned char *ty = as_utext(p, nm[y], &ly);
            if (as_same_text(tx, lx, ty, ly))
                return 0;
        }
    }
    for (int64_t x = 0; x < m; x++) { /* the fields: each key a name, once, its value (dtype, offset) inside */
        int64_t key = pr[2 * x], value = pr[2 * x + 1];
        Py_ssize_t lk = 0, ly = 0;
        const unsigned char *tk = as_utext(p, key, &lk);
        if (tk == NULL || AV_KIND(value) != AV_TUPLE || AS_T(p, value)[0] != 2)
            return 0;
        for (int64_t y = 0; y < x; y++) {
            const unsigned char *ty = as_utext(p, pr[2 * y], &ly);
            if (ty == NULL || as_same_text(tk, lk, ty, ly))
                return 0;
        }
        int found = 0;
        for (int64_t y = 0; y < m && !found; y++) {
            const unsigned char *ty = as_utext(p, nm[y], &ly);
            found = as_same_text(tk, lk, ty, ly);
        }
        if (!found)
            return 0;
        int64_t fd = AS_T(p, value)[4], off = AS_T(p, value)[8];
        if (AV_KIND(fd) != AV_DTYPE || DT_KIND(AV_X(fd)) != D_PLAIN || DT_SIZE(AV_X(fd)) < 1 ||
            AV_KIND(off) != AV_INT || AV_X(off) < 0 || AV_X(off) > AV_X(elsize) - DT_SIZE(AV_X(fd)))
            return 0;
    }
    p->owned_next = fi;
    return 1;
}

/* 1: the BUILD of this state on this target is harmless; 0: not proven */
static int
as_build_ok(proof_t *p, int64_t target, int64_t state)
{
    int kind = AV_KIND(state);
    if (AV_KIND(target) == AV_DTYPE &&
        (kind != AV_TUPLE || (DT_KIND(AV_X(target)) == D_DATETIME && AS_T(p, state)[0] != 9)))
        return 0; /* (NumPy reads any sequence as a dtype state; a datetime's needs its unit) */
    if (kind == AV_TUPLE) {
        const int64_t *t = AS_T(p, state);
        int64_t k = t[0];
        if ((k == 5 || k == 6 || k == 7) &&
            !(k != 6 && AV_KIND(t[4]) == AV_INT && AV_X(t[4]) >= 0 && AV_X(t[4]) <= 2 && t[3] >= 0))
            return 0; /* NumPy's dtype __setstate__ takes 5 to 9 items and trusts their fields: 5 or 7 only as
                       * an array's state (an int version, then a shape where a dtype's has its byte order,
                       * which must be a string), 6 never */
        if (k == 8 || k == 9) { /* a dtype's state */
            /* (version 3 for 8 items, 4 for 9: with another one NumPy works the flags out itself) */
            if (AV_KIND(target) != AV_DTYPE || t[5] < 0 || t[4] != AV(AV_INT, k - 5))
                return 0;
            int64_t d = DT_KIND(AV_X(target)), flags = t[5], sub = t[6], fields = t[7];
            if (d == D_OBJECT)
                return flags == AS_OBJECT_FLAGS && AV_KIND(sub) == AV_NONE && AV_KIND(fields) == AV_NONE;
            if (d == D_PLAIN || d == D_DATETIME) /* (a datetime's state without its unit, 8 items, crashes NumPy) */
                return (d == D_PLAIN || k == 9) && flags == 0 && AV_KIND(sub) == AV_NONE &&
                       AV_KIND(fields) == AV_NONE; /* (exactly NumPy's flags: USE_GETITEM crashed scalar()) */
            if (d == D_VOID)
                return as_void_ok(p, target, t);
            return 0; /* (string and unknown dtypes: NumPy takes their item size from the state) */
        }
        int64_t raw = t[2], shape = t[3];
        if ((k != 4 && k != 5 && k != 7) || raw == AS_NOT_A_LIST)
            return 1;
        if (raw == AS_UNKNOWN)
            return 0;
        int ok = !p->list_esc.v[raw] && shape >= 0 && p->list_count.v[raw] == shape;
        p->list_esc.v[raw] = 1;
        return ok;
    }
    if (kind == AV_SAFE || kind == AV_INT || kind == AV_NONE || kind == AV_STR)
        return 1;
    if (kind == AV_DICT) {
        int ok = p->dict_plain.v[AV_X(state)] != 0;
        p->dict_plain.v[AV_X(state)] = 0;
        return ok;
    }
    return 0;
}

/* the digits of a GET/PUT line (or -1), and of an INT line (an int value, AV_SAFE for
 * 00/01, AV_U for any other spelling) */
static int64_t
as_line_key(const unsigned char *s, Py_ssize_t len)
{
    if (len < 1 || len > 18)
        return -1;
    int64_t x = 0;
    for (Py_ssize_t j = 0; j < len; j++) {
        if (s[j] < '0' || s[j] > '9')
            return -1;
        x = x * 10 + (s[j] - '0');
    }
    return x;
}

static int64_t
as_int_line(const unsigned char *s, Py_ssize_t len)
{
    if (len == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1'))
        return AV(AV_SAFE, 0);
    int neg = len > 0 && s[0] == '-';
    const unsigned char *d = s + neg;
    Py_ssize_t dl = len - neg;
    if (dl < 1 || dl > 17 || (dl > 1 && d[0] == '0')) /* (17 digits: values stay inside the 60 bits kept) */
        return AV(AV_U, 0);
    int64_t x = as_line_key(d, dl);
    if (x < 0)
        return AV(AV_U, 0);
    return AV(AV_INT, neg ? -x : x);
}

static PyObject *
array_states_proven(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "array_states_proven(data, start) takes 2 arguments");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *d = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len, i = start < 0 ? n : start, fend = -1;
    proof_t p;
    memset(&p, 0, sizeof(p));
    p.d = d;
    p.n = n;
    p.owned_next = -1;
    int result = 0, oom = 0;
    int64_t x, y, z;
    int64_t *items;
    Py_ssize_t m, cnt;

#define NEED(end) \
    do { \
        if ((end) > n || (fend >= 0 && (end) > fend)) \
            goto fail; \
    } while (0)
#define PUSH(v) \
    do { \
        if (iv_push(&p.stack, (v)) < 0) \
            goto nomem; \
    } while (0)
#define FENCE (p.marks.n ? p.marks.v[p.marks.n - 1] : 0)
#define POP(dst) \
    do { \
        if (p.stack.n <= FENCE) \
            goto fail; \
        (dst) = p.stack.v[--p.stack.n]; \
    } while (0)
#define TOP(dst) \
    do { \
        if (p.stack.n <= FENCE) \
            goto fail; \
        (dst) = p.stack.v[p.stack.n - 1]; \
    } while (0)
#define POP_MARK() /* items = p.stack.v + m, cnt of them; the stack is cut at m */ \
    do { \
        if (!p.marks.n) \
            goto fail; \
        m = p.marks.v[--p.marks.n]; \
        items = p.stack.v + m; \
        cnt = p.stack.n - m; \
        p.stack.n = m; \
    } while (0)
#define CHECKED(v) \
    do { \
        if ((v) == -1) \
            goto nomem; \
        if (p.tuples.n / AS_TUPLE_SLOTS + p.list_count.n + p.dict_plain.n > p.n / 32 + 64) \
            goto fail; /* (a budget: at most 4 bytes of tables per byte of the stream) */ \
    } while (0)

    for (;;) {
        if (fend >= 0 && i == fend)
            fend = -1;
        NEED(i + 1);
        Py_ssize_t o = i;
        unsigned op = d[i++];
        switch (op) {
        case 0x4E: /* NONE */
            PUSH(AV(AV_NONE, 0));
            break;
        case 0x88: case 0x89: case 0x8F: /* NEWTRUE NEWFALSE EMPTY_SET */
            PUSH(AV(AV_SAFE, 0));
            break;
        case 0x5D: /* EMPTY_LIST */
            x = as_new_list(&p, 0);
            CHECKED(x);
            PUSH(x);
            break;
        case 0x7D: /* EMPTY_DICT */
            x = as_new_dict(&p, NULL, 0);
            CHECKED(x);
            PUSH(x);
            break;
        case 0x29: /* EMPTY_TUPLE */
            x = as_tuple_of(&p, NULL, 0);
            CHECKED(x);
            PUSH(x);
            break;
        case 0x4B: case 0x4D: case 0x4A: { /* BININT1 BININT2 BININT */
            int w = op == 0x4B ? 1 : op == 0x4D ? 2 : 4;
            NEED(i + w);
            x = rd_i64_le(d + i, w);
            if (w == 4)
                x = (int32_t)(uint32_t)x;
            PUSH(AV(AV_INT, x));
            i += w;
            break;
        }
        case 0x47: /* BINFLOAT */
            NEED(i + 8);
            PUSH(AV(AV_SAFE, 0));
            i += 8;
            break;
        case 0x8C: case 0x43: case 0x55: case 0x8A: /* SHORT_BINUNICODE SHORT_BINBYTES SHORT_BINSTRING LONG1 */
            NEED(i + 1);
            x = d[i];
            NEED(i + 1 + x);
            PUSH(op == 0x8A ? AV(AV_U, 0) : op == 0x43 ? AV(AV_SAFE, 0) : AV(AV_STR, o));
            i += 1 + (Py_ssize_t)x;
            break;
        case 0x58: case 0x42: case 0x54: case 0x8B: /* BINUNICODE BINBYTES BINSTRING LONG4 */
            NEED(i + 4);
            x = rd_i64_le(d + i, 4);
            if ((op == 0x54 || op == 0x8B) && x >= ((int64_t)1 << 31))
                goto fail;
            if (x > n)
                goto fail;
            NEED(i + 4 + x);
            PUSH(op == 0x8B ? AV(AV_U, 0) : op == 0x42 ? AV(AV_SAFE, 0) : AV(AV_STR, o));
            i += 4 + (Py_ssize_t)x;
            break;
        case 0x8D: case 0x8E: case 0x96: /* BINUNICODE8 BINBYTES8 BYTEARRAY8 */
            NEED(i + 8);
            x = rd_i64_le(d + i, 8);
            if (x < 0 || x > n)
                goto fail;
            NEED(i + 8 + x);
            PUSH(op == 0x8D ? AV(AV_STR, o) : AV(AV_SAFE, 0));
            i += 8 + (Py_ssize_t)x;
            break;
        case 0x94: /* MEMOIZE */
            x = p.memo_len;
            goto put;
        case 0x71: case 0x72: /* BINPUT LONG_BINPUT */
            NEED(i + (op == 0x71 ? 1 : 4));
            x = rd_i64_le(d + i, op == 0x71 ? 1 : 4);
            i += op == 0x71 ? 1 : 4;
        put:
            TOP(y);
            /* keys as picklers make them: dense from 0 (a far key is not followed) */
            if (x < 0 || x > 2 * p.memo_len + 1024)
                goto fail;
            while (p.memo.n <= x)
                if (iv_push(&p.memo, AV_UNSET) < 0)
                    goto nomem;
            if (p.memo.v[x] == AV_UNSET)
                p.memo_len++;
            p.memo.v[x] = y;
            break;
        case 0x68: case 0x6A: /* BINGET LONG_BINGET */
            NEED(i + (op == 0x68 ? 1 : 4));
            x = rd_i64_le(d + i, op == 0x68 ? 1 : 4);
            i += op == 0x68 ? 1 : 4;
        get:
            if (x < 0 || x >= p.memo.n || p.memo.v[x] == AV_UNSET)
                goto fail;
            PUSH(p.memo.v[x]);
            break;
        case 0x28: /* MARK */
            if (iv_push(&p.marks, p.stack.n) < 0)
                goto nomem;
            break;
        case 0x65: case 0x75: case 0x90: /* APPENDS SETITEMS ADDITEMS */
            POP_MARK();
            TOP(x);
            if (op == 0x65) {
                for (Py_ssize_t j = 0; j < cnt; j++)
                    as_escape(&p, items[j]);
                if (AV_KIND(x) == AV_LIST) {
                    int64_t *c = &p.list_count.v[AV_X(x)];
                    *c = *c + cnt > AS_CAP ? AS_CAP : *c + cnt;
                }
            }
            else if (op == 0x75) {
                if (cnt % 2)
                    goto fail;
                if (as_set_items(&p, x, items, cnt / 2) < 0)
                    goto nomem;
            }
            else
                for (Py_ssize_t j = 0; j < cnt; j++)
                    as_escape(&p, items[j]);
            break;
        case 0x61: /* APPEND */
            POP(y);
            TOP(x);
            as_escape(&p, y);
            if (AV_KIND(x) == AV_LIST) {
                int64_t *c = &p.list_count.v[AV_X(x)];
                *c = *c + 1 > AS_CAP ? AS_CAP : *c + 1;
            }
            break;
        case 0x73: /* SETITEM */
            POP(z);
            POP(y);
            TOP(x);
            {
                int64_t pair[2] = {y, z};
                if (as_set_items(&p, x, pair, 1) < 0)
                    goto nomem;
            }
            break;
        case 0x85: case 0x86: case 0x87: /* TUPLE1 TUPLE2 TUPLE3 */
            cnt = op - 0x84;
            if (p.stack.n - cnt < FENCE)
                goto fail;
            p.stack.n -= cnt;
            x = as_tuple_of(&p, p.stack.v + p.stack.n, cnt);
            CHECKED(x);
            PUSH(x);
            break;
        case 0x74: /* TUPLE */
            POP_MARK();
            x = as_tuple_of(&p, items, cnt);
            CHECKED(x);
            PUSH(x);
            break;
        case 0x6C: /* LIST */
            POP_MARK();
            for (Py_ssize_t j = 0; j < cnt; j++)
                as_escape(&p, items[j]);
            x = as_new_list(&p, cnt);
            CHECKED(x);
            PUSH(x);
            break;
        case 0x64: /* DICT */
            POP_MARK();
            if (cnt % 2)
                goto fail;
            x = as_new_dict(&p, items, cnt / 2);
            CHECKED(x);
            PUSH(x);
            break;
        case 0x91: /* FROZENSET */
            POP_MARK();
            for (Py_ssize_t j = 0; j < cnt; j++)
                as_escape(&p, items[j]);
            PUSH(AV(AV_SAFE, 0));
            break;
        case 0x52: /* REDUCE */
            POP(y);
            POP(x);
            as_escape(&p, y);
            if (AV_KIND(x) == AV_DTYPE_CLASS) {
                Py_ssize_t len = 0;
                const unsigned char *t =
                    AV_KIND(y) == AV_TUPLE && AS_T(&p, y)[0] >= 1 ? as_text(&p, AS_T(&p, y)[4], &len) : NULL;
                PUSH(AV(AV_DTYPE, as_dtype_kind(t, len)));
            }
            else if (AV_KIND(x) == AV_CODECS_ENCODE) /* (protocols 0-2 write bytes so: bytes) */
                PUSH(AV(AV_SAFE, 0));
            else
                PUSH(AV(AV_U, 0));
            break;
        case 0x81: /* NEWOBJ */
            POP(y);
            POP(x);
            as_escape(&p, x);
            as_escape(&p, y);
            PUSH(AV(AV_U, 0));
            break;
        case 0x92: /* NEWOBJ_EX */
            POP(z);
            POP(y);
            POP(x);
            as_escape(&p, x);
            as_escape(&p, y);
            as_escape(&p, z);
            PUSH(AV(AV_U, 0));
            break;
        case 0x62: /* BUILD */
            POP(y);
            TOP(x);
            if (!as_build_ok(&p, x, y))
                goto fail;
            as_escape(&p, y);
            if (p.owned_next >= 0) { /* (a void dtype's fields dict: not to be touched again) */
                p.dict_owned.v[p.owned_next] = 1;
                p.owned_next = -1;
            }
            break;
        case 0x93: { /* STACK_GLOBAL */
            POP(y);
            POP(x);
            Py_ssize_t lm = 0, ln = 0;
            const unsigned char *tm = as_text(&p, x, &lm), *tn = as_text(&p, y, &ln);
            PUSH(as_same(tm, lm, "numpy") && as_same(tn, ln, "dtype")      ? AV(AV_DTYPE_CLASS, 0)
                 : as_same(tm, lm, "_codecs") && as_same(tn, ln, "encode") ? AV(AV_CODECS_ENCODE, 0)
                                                                             : AV(AV_U, 0));
            break;
        }
        case 0x63: case 0x69: /* GLOBAL INST: two lines */
        case 0x49: case 0x4C: case 0x46: case 0x53: case 0x56: case 0x67: case 0x70: case 0x50: { /* one line */
            Py_ssize_t lim = fend >= 0 ? fend : n, a = i, e1, e2 = -1;
            const unsigned char *nl = memchr(d + a, '\n', (size_t)(lim - a));
            if (nl == NULL)
                goto fail;
            e1 = nl - d;
            if (op == 0x63 || op == 0x69) {
                nl = memchr(d + e1 + 1, '\n', (size_t)(lim - e1 - 1));
                if (nl == NULL)
                    goto fail;
                e2 = nl - d;
                if (e1 == a || e2 == e1 + 1)
                    goto fail;
                int numpy_dtype = op == 0x63 && as_same(d + a, e1 - a, "numpy") && as_same(d + e1 + 1, e2 - e1 - 1, "dtype");
                int codecs_encode =
                    op == 0x63 && as_same(d + a, e1 - a, "_codecs") && as_same(d + e1 + 1, e2 - e1 - 1, "encode");
                i = e2 + 1;
                if (op == 0x69) {
                    POP_MARK();
                    for (Py_ssize_t j = 0; j < cnt; j++)
                        as_escape(&p, items[j]);
                }
                PUSH(numpy_dtype ? AV(AV_DTYPE_CLASS, 0) : codecs_encode ? AV(AV_CODECS_ENCODE, 0) : AV(AV_U, 0));
                break;
            }
            i = e1 + 1;
            if (op == 0x49)
                PUSH(as_int_line(d + a, e1 - a));
            else if (op == 0x67 || op == 0x70) {
                x = as_line_key(d + a, e1 - a);
                if (x < 0)
                    goto fail;
                if (op == 0x67)
                    goto get;
                goto put;
            }
            else if (op == 0x50 || op == 0x4C)
                PUSH(AV(AV_U, 0));
            else if (op == 0x46) /* FLOAT */
                PUSH(AV(AV_SAFE, 0));
            else /* STRING, UNICODE */
                PUSH(AV(AV_STR, o));
            break;
        }
        case 0x6F: /* OBJ */
            POP_MARK();
            if (cnt < 1)
                goto fail;
            for (Py_ssize_t j = 0; j < cnt; j++)
                as_escape(&p, items[j]);
            PUSH(AV(AV_U, 0));
            break;
        case 0x51: /* BINPERSID */
            POP(x);
            as_escape(&p, x);
            PUSH(AV(AV_U, 0));
            break;
        case 0x82: case 0x83: case 0x84: { /* EXT1 EXT2 EXT4 */
            int w = op == 0x82 ? 1 : op == 0x83 ? 2 : 4;
            NEED(i + w);
            i += w;
            PUSH(AV(AV_U, 0));
            break;
        }
        case 0x30: /* POP */
            if (p.marks.n && p.stack.n == p.marks.v[p.marks.n - 1])
                p.marks.n--;
            else
                POP(x);
            break;
        case 0x31: /* POP_MARK */
            POP_MARK();
            break;
        case 0x32: /* DUP */
            TOP(x);
            PUSH(x);
            break;
        case 0x80: /* PROTO */
            NEED(i + 1);
            i += 1;
            break;
        case 0x95: /* FRAME */
            NEED(i + 8);
            if (fend >= 0)
                goto fail;
            x = rd_i64_le(d + i, 8);
            i += 8;
            if (x < 0 || x > n - i)
                goto fail;
            fend = x ? i + (Py_ssize_t)x : -1;
            break;
        case 0x2E: /* STOP */
            POP(x);
            result = p.stack.n == 0 && !p.lost_dtype_class && !p.broken;
            goto done;
        default: /* NEXT_BUFFER, READONLY_BUFFER and anything unknown */
            goto fail;
        }
    }
nomem:
    oom = 1;
fail:
    result = 0;
done:
#undef NEED
#undef PUSH
#undef FENCE
#undef POP
#undef TOP
#undef POP_MARK
#undef CHECKED
    proof_free(&p);
    PyBuffer_Release(&view);
    if (oom)
        return PyErr_NoMemory();
    return PyLong_FromLong(result);
}

/* prefault(buffer) -> bool: map in the whole pages of a new, writable buffer in one system
 * call (MADV_POPULATE_WRITE) before a read fills it. Letting the read fault them in one at a
 * time costs more: loading 200 files of 230 kB and keeping them, the best of 12 rounds was
 * 10-22% lower in five of seven alternating runs and 1-4% higher in two (medians 6-21% lower
 * in the three runs that recorded them). Memory the allocator hands out again has its pages already: then nothing is done
 * (one mincore call on the first page tells). True when pages were mapped in; False when
 * they were there, the buffer holds no whole page, or the kernel has no such call (older
 * than Linux 5.14: then it is not tried again). */
static int prefault_off = 0;

static PyObject *
prefault(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "prefault(buffer) takes one argument");
        return NULL;
    }
#ifdef __linux__
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE) < 0)
        return NULL;
    int done = 0;
    long page = sysconf(_SC_PAGESIZE);
    if (!prefault_off && page > 0) {
        uintptr_t start = ((uintptr_t)view.buf + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
        uintptr_t end = ((uintptr_t)view.buf + (uintptr_t)view.len) & ~((uintptr_t)page - 1);
        unsigned char there = 0;
        /* memory the allocator hands out again still has its pages: if the first is
         * there, the rest most likely are too, and walking them would only cost time */
        if (end > start && !(mincore((void *)start, (size_t)page, &there) == 0 && (there & 1))) {
            int rc, err;
            Py_BEGIN_ALLOW_THREADS
            rc = madvise((void *)start, end - start, MADV_POPULATE_WRITE);
            err = errno;
            Py_END_ALLOW_THREADS
            if (rc == 0)
                done = 1;
            else if (err == EINVAL || err == ENOSYS)
                prefault_off = 1; /* an older kernel */
        }
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(done);
#else
    (void)args;
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"plain_scan", (PyCFunction)(void (*)(void))plain_scan, METH_FASTCALL,
     "plain_scan(pairs, tuples) -> the first (key, value) pair that is not plain, or None"},
    {"tree_problem", (PyCFunction)(void (*)(void))tree_problem, METH_FASTCALL,
     "tree_problem(records, n, itemsize, left_at, right_at, feature_at, n_features, max_depth) -> str or None"},
    {"plain_blobs", (PyCFunction)(void (*)(void))plain_blobs, METH_FASTCALL,
     "plain_blobs(cls, entries, data_end, header_size, align, max_chunk) -> [cls instance or None]"},
    {"find_checked", (PyCFunction)(void (*)(void))find_checked, METH_FASTCALL,
     "find_checked(root, atoms, opaque, cache, missing, check_for, ndarray, dtype, generic) -> [(check, obj)]"},
    {"text_offsets", (PyCFunction)(void (*)(void))text_offsets, METH_FASTCALL,
     "text_offsets(offsets, data, n, width) -> 0 (bad offsets), 1 (ASCII text) or 2 (other text)"},
    {"array_states_proven", (PyCFunction)(void (*)(void))array_states_proven, METH_FASTCALL,
     "array_states_proven(data, start) -> 1 (proven) or 0"},
    {"prefault", (PyCFunction)(void (*)(void))prefault, METH_FASTCALL,
     "prefault(buffer) -> True if the buffer's whole pages were mapped in at once"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_speedups", "Hot loops of amber in C.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__speedups(void)
{
#define INTERN(var, text)                                                                                              \
    if (!(var = PyUnicode_InternFromString(text)))                                                                     \
        return NULL;
    INTERN(str_offset, "offset")
    INTERN(str_nbytes, "nbytes")
    INTERN(str_stored, "stored")
    INTERN(str_chunk, "chunk")
    INTERN(str_chunks, "chunks")
    INTERN(str_codec, "codec")
    INTERN(str_filter, "filter")
    INTERN(str_index, "index")
    INTERN(str_starts, "starts")
#undef INTERN
    return PyModule_Create(&moddef);
}
