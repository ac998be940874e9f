/* The pickle walker's main loop in C: the same walk as ``_walk._walk_py``, opcode for
 * opcode, with the same stack values (Python objects: None, str offsets as int, global
 * names as str, ``_Made``, ``_AttrArgs``, ``_Blob``, ``_BlobArgs``), the same memo (a dict
 * shared between the pickles of one stream) and the same results and messages. Rare,
 * involved cases (getattr, extension codes, Python 2 STRING/UNICODE operands, the latin-1
 * check of ``_codecs.encode``) call back into the Python helpers of ``_walk``.
 *
 * Reading hostile input: every read of the buffer is bounds-checked first; a read past
 * the end ends the walk where the Python walker's IndexError/struct.error ends it. Lengths
 * from the stream are compared against what is left, never added to an offset unchecked,
 * and nothing is allocated from a length field.
 *
 * ``tests/test_pickle_walk_c.py`` checks, by differential testing on generated and
 * mutated streams, that this walk and the Python one give equal results.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* opcode kinds, as numbered in _walk.py */
enum {
    K_PUSH = 0, K_MEMOIZE = 1, K_SHORT_UNI = 2, K_BINPUT = 3, K_BINGET = 4, K_MARK = 5,
    K_LINE = 6, K_COUNTED = 7, K_SETITEM = 8, K_APPEND = 9, K_FILL = 10, K_TUPLE_N = 11,
    K_COLLECT = 12, K_REDUCE = 13, K_BUILD = 14, K_NEWOBJ = 15, K_STACK_GLOBAL = 16,
    K_GLOBAL = 17, K_FRAME = 18, K_PROTO = 19, K_STOP = 20, K_OBJ = 21, K_EXT = 22,
    K_BINPERSID = 23, K_POP = 24, K_POP_MARK = 25, K_DUP = 26, K_READONLY = 27, K_BAD = 99
};

#define MAX_NAME_BYTES 1024
#define MAX_PAYLOADS 100000

/* set once by setup() */
static int ready = 0;
static unsigned char kinds[256];
static unsigned char argsizes[256];
static unsigned char steps[256];
static unsigned char pushes_str[256];
static PyObject *opnames[256];   /* str or NULL */
static unsigned char prefix2[65536 / 8];
static PyObject *MadeType, *AttrArgsType, *BlobType, *BlobArgsType;
static PyObject *MadeCache;  /* name -> (_Made(name), name): the stack values of calls, made once */
static PyObject *NameMapping, *ImportMapping;
static PyObject *StringAtFn, *GetattrFn, *ExtFn, *Latin1Fn;
static PyObject *EmptyTuple, *EmptyDict, *Zero;
static PyObject *s_name, *s_offset, *s_opcode, *s_resolved, *s_module, *s_qualname, *s_raw, *s_target, *s_arg;
static PyObject *s_stack_global, *s_question, *s_getattr_name, *s_codecs_encode;

static inline int is_prefix(unsigned v) { return (prefix2[v >> 3] >> (v & 7)) & 1; }

/* Instances of the Python classes with ``__slots__`` that the walk and the evaluator make
 * by the thousand (GlobalRef, CallSite, Walk, and the evaluator's _Global, _Obj, _Wrapper,
 * _DType) are made here as their own __init__ makes them: allocated, then each slot set
 * directly (at the offset its member descriptor gives), without a call into Python.
 * setup() checks that every field is an object slot of the class. */
typedef struct {
    PyTypeObject *type;
    int k;
    Py_ssize_t off[13];
} slotted_t;

static int
slotted_init(slotted_t *st, PyObject *type, const char *const *names, int k)
{
    if (!PyType_Check(type) || k > 13) {
        PyErr_SetString(PyExc_TypeError, "expected a class");
        return -1;
    }
    for (int j = 0; j < k; j++) {
        PyObject *d = PyObject_GetAttrString(type, names[j]);
        if (d == NULL)
            return -1;
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) && ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX
                 && ((PyMemberDescrObject *)d)->d_common.d_type == (PyTypeObject *)type;
        if (ok)
            st->off[j] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%s.%s is not an object slot", ((PyTypeObject *)type)->tp_name, names[j]);
            return -1;
        }
    }
    Py_INCREF(type);
    Py_XSETREF(st->type, (PyTypeObject *)type);
    st->k = k;
    return 0;
}

#define SLOT(o, st, j) (*(PyObject **)((char *)(o) + (st).off[j]))
static slotted_t SGlobalRef, SCallSite, SWalk;

/* a new instance with its k slots set to vals (borrowed; NULL stands for None) */
static PyObject *
slotted_new(slotted_t *st, PyObject *const *vals)
{
    PyObject *o = st->type->tp_alloc(st->type, 0);
    if (o == NULL)
        return NULL;
    for (int j = 0; j < st->k; j++) {
        PyObject *v = vals[j] ? vals[j] : Py_None;
        Py_INCREF(v);
        SLOT(o, *st, j) = v;
    }
    return o;
}

/* slot j of o (borrowed), when o is exactly of the class; NULL with an exception when unset */
static inline PyObject *
slotted_get(slotted_t *st, PyObject *o, int j)
{
    PyObject *v = SLOT(o, *st, j);
    if (v == NULL)
        PyErr_SetString(PyExc_AttributeError, "an unset slot");
    return v;
}

/* set slot j of o (exactly of the class) to v (borrowed) */
static inline void
slotted_set(slotted_t *st, PyObject *o, int j, PyObject *v)
{
    Py_INCREF(v);
    Py_XSETREF(SLOT(o, *st, j), v);
}

static PyObject *
opname_or(unsigned op, const char *dflt)
{
    if (opnames[op] != NULL) {
        Py_INCREF(opnames[op]);
        return opnames[op];
    }
    return PyUnicode_FromString(dflt);
}

/* calls.append(CallSite(off, opname, target, arg)); target and arg borrowed (NULL: None) */
static int
add_call(PyObject *calls, Py_ssize_t off, PyObject *opname, PyObject *target, PyObject *arg)
{
    PyObject *offo = PyLong_FromSsize_t(off);
    if (offo == NULL)
        return -1;
    PyObject *vals[4] = {offo, opname, target, arg};
    PyObject *c = slotted_new(&SCallSite, vals);
    Py_DECREF(offo);
    if (c == NULL)
        return -1;
    int r = PyList_Append(calls, c);
    Py_DECREF(c);
    return r;
}

static PyObject *
make_global(PyObject *name, Py_ssize_t off, PyObject *opcode, int resolved, PyObject *module, PyObject *qualname, PyObject *raw)
{
    PyObject *offo = PyLong_FromSsize_t(off);
    if (offo == NULL)
        return NULL;
    PyObject *vals[7] = {name, offo, opcode, resolved ? Py_True : Py_False, module, qualname, raw};
    PyObject *g = slotted_new(&SGlobalRef, vals);
    Py_DECREF(offo);
    return g;
}

/* f"{m}.{q}" for two str */
static PyObject *
dotted(PyObject *m, PyObject *q)
{
    if (!PyUnicode_CheckExact(m) || !PyUnicode_CheckExact(q))
        return PyUnicode_FromFormat("%U.%U", m, q);
    Py_ssize_t lm = PyUnicode_GET_LENGTH(m), lq = PyUnicode_GET_LENGTH(q);
    Py_UCS4 mx = Py_MAX(PyUnicode_MAX_CHAR_VALUE(m), PyUnicode_MAX_CHAR_VALUE(q));
    PyObject *r = PyUnicode_New(lm + 1 + lq, mx < 127 ? 127 : mx);
    if (r == NULL)
        return NULL;
    if (PyUnicode_CopyCharacters(r, 0, m, 0, lm) < 0 || PyUnicode_WriteChar(r, lm, '.') < 0
        || PyUnicode_CopyCharacters(r, lm + 1, q, 0, lq) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

/* _global_ref(module, qualname, proto, offset, opcode): module/qualname borrowed or NULL
 * (unknown). Returns a new GlobalRef; *name_out (borrowed from it) its name, *resolved. */
static PyObject *
global_ref(PyObject *module, PyObject *qualname, int proto, Py_ssize_t off, PyObject *opcode,
           PyObject **name_out, int *resolved)
{
    PyObject *g = NULL, *name = NULL, *raw = NULL;
    if (module != NULL && qualname != NULL) {
        PyObject *m = module, *q = qualname;
        if (proto < 3) {
            PyObject *key = PyTuple_Pack(2, module, qualname);
            if (key == NULL)
                return NULL;
            PyObject *pair = PyDict_GetItemWithError(NameMapping, key);
            Py_DECREF(key);
            if (pair == NULL && PyErr_Occurred())
                return NULL;
            if (pair != NULL && PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2) {
                m = PyTuple_GET_ITEM(pair, 0);
                q = PyTuple_GET_ITEM(pair, 1);
            }
            else {
                PyObject *mapped = PyDict_GetItemWithError(ImportMapping, module);
                if (mapped == NULL && PyErr_Occurred())
                    return NULL;
                if (mapped != NULL)
                    m = mapped;
            }
        }
        if (m != module || q != qualname) {
            int same_m = PyObject_RichCompareBool(m, module, Py_EQ);
            int same_q = same_m == 1 ? PyObject_RichCompareBool(q, qualname, Py_EQ) : 0;
            if (same_m < 0 || same_q < 0)
                return NULL;
            if (!(same_m && same_q)) {
                raw = PyUnicode_FromFormat("%U.%U", module, qualname);
                if (raw == NULL)
                    return NULL;
            }
        }
        name = dotted(m, q);
        if (name == NULL) {
            Py_XDECREF(raw);
            return NULL;
        }
        g = make_global(name, off, opcode, 1, m, q, raw);
        *resolved = 1;
    }
    else {
        PyObject *mod = module;
        if (module != NULL && proto < 3) {
            PyObject *mapped = PyDict_GetItemWithError(ImportMapping, module);
            if (mapped == NULL && PyErr_Occurred())
                return NULL;
            if (mapped != NULL) {
                raw = PyUnicode_FromFormat("%U.?", module);
                if (raw == NULL)
                    return NULL;
                mod = mapped;
            }
        }
        name = PyUnicode_FromFormat("%U.%U", mod ? mod : s_question, qualname ? qualname : s_question);
        if (name == NULL) {
            Py_XDECREF(raw);
            return NULL;
        }
        g = make_global(name, off, opcode, 0, mod, qualname, raw);
        *resolved = 0;
    }
    Py_XDECREF(raw);
    Py_DECREF(name);  /* g holds it */
    if (g != NULL)
        *name_out = name;
    return g;
}

static inline uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rd_u64(const unsigned char *p)
{
    return (uint64_t)rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32;
}

/* Short ASCII strings (module and attribute names, dict keys: the same few in every file)
 * are made once and shared while they stay in this table: str objects are immutable. */
#define STR_CACHE 1024
#define STR_CACHE_MAX 64
static PyObject *str_cache[STR_CACHE];

/* the str of the ``ln`` bytes at ``s`` when they are all ASCII (what any of the unpickler's
 * decodings makes of them); NULL with no error set when one is not, NULL with an error on
 * failure */
static PyObject *
ascii_str(const char *s, Py_ssize_t ln)
{
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t j = 0; j < ln; j++) {
        unsigned char c = (unsigned char)s[j];
        if (c >= 0x80)
            return NULL;
        h = (h ^ c) * 1099511628211ULL;
    }
    if (ln > STR_CACHE_MAX)
        return PyUnicode_DecodeASCII(s, ln, "strict");
    PyObject **slot = &str_cache[(h ^ (h >> 29)) & (STR_CACHE - 1)];
    PyObject *v = *slot;
    if (v != NULL && PyUnicode_GET_LENGTH(v) == ln && memcmp(PyUnicode_DATA(v), s, (size_t)ln) == 0) {
        Py_INCREF(v);
        return v;
    }
    v = PyUnicode_DecodeASCII(s, ln, "strict");
    if (v != NULL && PyUnicode_IS_ASCII(v) && PyUnicode_KIND(v) == PyUnicode_1BYTE_KIND) {
        Py_INCREF(v);
        Py_XSETREF(*slot, v);
    }
    return v;
}

/* _string_at: the str pushed by the string opcode at off; new reference, Py_None when not
 * statically known, NULL on a real error. */
static PyObject *
string_at(PyObject *dataobj, const unsigned char *d, Py_ssize_t n, Py_ssize_t off, PyObject *find_nl)
{
    if (off < 0 || off >= n)
        Py_RETURN_NONE;
    unsigned op = d[off];
    uint64_t ln;
    Py_ssize_t a;
    if (op == 0x8C || op == 0x55) {
        if (off + 1 >= n)
            Py_RETURN_NONE;
        ln = d[off + 1];
        a = off + 2;
    }
    else if (op == 0x58 || op == 0x54) {
        if (n - off < 5)
            Py_RETURN_NONE;
        ln = rd_u32(d + off + 1);
        a = off + 5;
    }
    else if (op == 0x8D) {
        if (n - off < 9)
            Py_RETURN_NONE;
        ln = rd_u64(d + off + 1);
        a = off + 9;
    }
    else {
        return PyObject_CallFunction(StringAtFn, "OnnO", dataobj, n, off, find_nl);
    }
    if (ln > MAX_NAME_BYTES || (Py_ssize_t)ln > n - a)
        Py_RETURN_NONE;
    const char *s = (const char *)d + a;
    PyObject *r = ascii_str(s, (Py_ssize_t)ln);
    if (r != NULL || PyErr_Occurred())
        return r;
    if (op == 0x55 || op == 0x54) {
        for (uint64_t j = 0; j < ln; j++)
            if ((unsigned char)s[j] >= 0x80)
                Py_RETURN_NONE;
        r = PyUnicode_DecodeASCII(s, (Py_ssize_t)ln, "strict");
    }
    else {
        r = PyUnicode_DecodeUTF8(s, (Py_ssize_t)ln, "surrogatepass");
    }
    if (r == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return r;
}

/* a growable array of Py_ssize_t (the MARK stack) */
typedef struct {
    Py_ssize_t *v;
    Py_ssize_t len, cap;
} marks_t;

static int
marks_push(marks_t *m, Py_ssize_t x)
{
    if (m->len == m->cap) {
        Py_ssize_t cap = m->cap ? m->cap * 2 : 64;
        Py_ssize_t *nv = PyMem_Realloc(m->v, (size_t)cap * sizeof(Py_ssize_t));
        if (nv == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        m->v = nv;
        m->cap = cap;
    }
    m->v[m->len++] = x;
    return 0;
}

/* _note(stack[lo:], watch, escapes, off) */
static int
note(PyObject *stack, Py_ssize_t lo, PyObject *watch, PyObject *escapes, Py_ssize_t off)
{
    Py_ssize_t hi = PyList_GET_SIZE(stack);
    for (Py_ssize_t j = lo < 0 ? 0 : lo; j < hi; j++) {
        PyObject *v = PyList_GET_ITEM(stack, j);
        if (!PyUnicode_CheckExact(v))
            continue;
        int c = PySet_Contains(watch, v);
        if (c < 0)
            return -1;
        if (c) {
            PyObject *t = Py_BuildValue("(On)", v, off);
            if (t == NULL || PyList_Append(escapes, t) < 0) {
                Py_XDECREF(t);
                return -1;
            }
            Py_DECREF(t);
        }
    }
    return 0;
}

/* del stack[lo:] (the walk's own list, never seen by Python code while it runs) */
static int
del_from(PyObject *stack, Py_ssize_t lo)
{
    Py_ssize_t len = PyList_GET_SIZE(stack);
    if (lo < 0)
        lo = 0;
    if (lo >= len)
        return 0;
    PyObject **items = ((PyListObject *)stack)->ob_item;
    Py_SET_SIZE(stack, lo);
    for (Py_ssize_t j = len - 1; j >= lo; j--)
        Py_DECREF(items[j]);
    return 0;
}

/* stack[-1] = v (steals v) */
static inline void
set_top(PyObject *stack, PyObject *v)
{
    PyList_SetItem(stack, PyList_GET_SIZE(stack) - 1, v);
}

/* del stack[lo:]; stack.append(v): the items from ``lo`` on become one value (steals v,
 * also on error; v NULL is an error already set) */
static int
replace_from(PyObject *stack, Py_ssize_t lo, PyObject *v)
{
    if (v == NULL)
        return -1;
    int r = del_from(stack, lo) < 0 ? -1 : PyList_Append(stack, v);
    Py_DECREF(v);
    return r;
}

/* _Made(name), for an exact str name: one per name, kept in MadeCache (a str subclass
 * without slots or a dict: immutable, so the walks can share it) */
static PyObject *
call_made(PyObject *name)
{
    if (!PyUnicode_CheckExact(name))
        return PyObject_CallOneArg(MadeType, name);
    PyObject *hit = PyDict_GetItemWithError(MadeCache, name);
    if (hit != NULL) {
        PyObject *m = PyTuple_GET_ITEM(hit, 0);
        Py_INCREF(m);
        return m;
    }
    if (PyErr_Occurred())
        return NULL;
    PyObject *m = PyObject_CallOneArg(MadeType, name);
    if (m == NULL)
        return NULL;
    if (PyDict_GET_SIZE(MadeCache) >= 4096)
        PyDict_Clear(MadeCache);
    PyObject *entry = PyTuple_Pack(2, m, name);
    if (entry == NULL || PyDict_SetItem(MadeCache, name, entry) < 0) {
        Py_XDECREF(entry);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(entry);
    return m;
}

/* str(v) for a str (a _Made: the name it was made from); new ref */
static PyObject *
plain_str(PyObject *v)
{
    if (Py_IS_TYPE(v, (PyTypeObject *)MadeType)) {
        PyObject *hit = PyDict_GetItemWithError(MadeCache, v);
        if (hit != NULL && PyTuple_GET_ITEM(hit, 0) == v) {
            PyObject *s = PyTuple_GET_ITEM(hit, 1);
            Py_INCREF(s);
            return s;
        }
        if (hit == NULL && PyErr_Occurred())
            return NULL;
    }
    return PyObject_Str(v);
}

/* _walk._args_value: the stack value of a tuple of ``k`` items (new ref, None for
 * unknown), NULL on error */
static PyObject *
args_value(PyObject **items, Py_ssize_t k, int track)
{
    PyObject *type = NULL;
    if (k == 2 && PyUnicode_Check(items[0]) && PyLong_CheckExact(items[1]))
        type = AttrArgsType;
    else if (track && k == 1 && Py_IS_TYPE(items[0], (PyTypeObject *)BlobType))
        type = BlobArgsType;
    else if (track && k == 2 && PyLong_CheckExact(items[0]) && PyLong_CheckExact(items[1]))
        type = BlobArgsType;
    if (type == NULL)
        Py_RETURN_NONE;
    PyObject *t = PyTuple_New(k);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_INCREF(items[j]);
        PyTuple_SET_ITEM(t, j, items[j]);
    }
    PyObject *r = PyObject_CallOneArg(type, t);
    Py_DECREF(t);
    return r;
}

/* is ``v`` a str equal to the str ``s``? */
static inline int
same_str(PyObject *v, PyObject *s)
{
    return PyUnicode_Check(v) && PyUnicode_Compare(v, s) == 0;
}

/* The call site of calling ``cls`` (a global's name, or anything else: unknown) at ``off``;
 * returns the stack value of the result (new ref): ``_Made(cls)`` or None; NULL on error. */
static PyObject *
call_result(PyObject *calls, Py_ssize_t off, PyObject *opname, PyObject *cls)
{
    if (PyUnicode_CheckExact(cls))
        return add_call(calls, off, opname, cls, NULL) < 0 ? NULL : call_made(cls);
    if (add_call(calls, off, opname, NULL, NULL) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* The memo key of BINGET/LONG_BINGET/BINPUT/LONG_BINPUT at ``i``: 0, or -1 when the
 * argument runs past the end of the data. */
static inline int
memo_key(const unsigned char *d, Py_ssize_t n, Py_ssize_t i, unsigned op, Py_ssize_t *key)
{
    if (op == 0x68 || op == 0x71) {
        if (n - i < 2)
            return -1;
        *key = d[i + 1];
    }
    else {
        if (n - i < 5)
            return -1;
        *key = (Py_ssize_t)rd_u32(d + i + 1);
    }
    return 0;
}

static int
add_payload(PyObject *payloads, Py_ssize_t i, Py_ssize_t a, Py_ssize_t ln)
{
    PyObject *t = Py_BuildValue("(nnn)", i, a, ln);
    if (t == NULL)
        return -1;
    int r = PyList_Append(payloads, t);
    Py_DECREF(t);
    return r;
}

#define FAIL goto fail
#define ERR(...) do { error = PyUnicode_FromFormat(__VA_ARGS__); if (error == NULL) FAIL; goto stop; } while (0)
#define ERRS(s) do { error = PyUnicode_FromString(s); if (error == NULL) FAIL; goto stop; } while (0)
#define NEED(k) do { if ((Py_ssize_t)(k) > n - i) goto eof; } while (0)
#define SOFT(...) do { soft = PyUnicode_FromFormat(__VA_ARGS__); if (soft == NULL) FAIL; } while (0)
#define PUSH(v) do { PyObject *_v = (v); if (_v == NULL) FAIL; int _r = PyList_Append(stack, _v); Py_DECREF(_v); if (_r < 0) FAIL; } while (0)
#define PUSH_NONE() do { if (PyList_Append(stack, Py_None) < 0) FAIL; } while (0)
#define LEN() PyList_GET_SIZE(stack)
#define TOP(k) PyList_GET_ITEM(stack, LEN() - (k))
#define POP_MARK() do { x = marks.v[--marks.len]; fence = marks.len ? marks.v[marks.len - 1] : 0; } while (0)

/* A watched global's name was pushed: from now on, its uses are watched (``_walk``'s
 * ``watching``), in this pickle and the next ones of the stream (``armed``). */
static int
arm(PyObject *watch, int nonempty, PyObject *name, int *watching, int *armed)
{
    if (!nonempty)
        return 0;
    int c = PySet_Contains(watch, name);
    if (c > 0)
        *watching = *armed = 1;
    return c < 0 ? -1 : 0;
}

/* The unpickler's memo: keys below MEMO_ARRAY in a C array (a bounded one: its size
 * follows the keys, at most MEMO_ARRAY entries), the others in a dict. The walk's memo
 * dict is loaded into it at the start and written back at the end. */
#define MEMO_ARRAY 4096
typedef struct {
    PyObject **v;     /* v[k]: the value of key k (a reference), NULL when unset */
    Py_ssize_t cap;   /* entries allocated */
    Py_ssize_t count; /* keys set in v */
    PyObject *dict;   /* the keys >= MEMO_ARRAY (with, from the start, the others given) */
    Py_ssize_t base;  /* keys of dict below MEMO_ARRAY (loaded into v at the start) */
} memo_t;

/* len(memo) */
static inline Py_ssize_t
memo_len(memo_t *m)
{
    return m->count + PyDict_GET_SIZE(m->dict) - m->base;
}

/* memo[key] = v, for 0 <= key < MEMO_ARRAY */
static int
memo_set_small(memo_t *m, Py_ssize_t key, PyObject *v)
{
    if (key >= m->cap) {
        Py_ssize_t cap = m->cap ? m->cap : 256;
        while (cap <= key)
            cap *= 2;
        if (cap > MEMO_ARRAY)
            cap = MEMO_ARRAY;
        PyObject **nv = PyMem_Realloc(m->v, (size_t)cap * sizeof(PyObject *));
        if (nv == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memset(nv + m->cap, 0, (size_t)(cap - m->cap) * sizeof(PyObject *));
        m->v = nv;
        m->cap = cap;
    }
    Py_INCREF(v);
    if (m->v[key] == NULL)
        m->count++;
    Py_XSETREF(m->v[key], v);
    return 0;
}

/* memo[key] = v */
static int
memo_put(memo_t *m, Py_ssize_t key, PyObject *v)
{
    if (key >= 0 && key < MEMO_ARRAY)
        return memo_set_small(m, key, v);
    PyObject *k = PyLong_FromSsize_t(key);
    if (k == NULL)
        return -1;
    int r = PyDict_SetItem(m->dict, k, v);
    Py_DECREF(k);
    return r;
}

/* memo[key] (borrowed); NULL with no exception set when it is missing */
static PyObject *
memo_get(memo_t *m, Py_ssize_t key)
{
    if (key >= 0 && key < MEMO_ARRAY)
        return key < m->cap ? m->v[key] : NULL;
    PyObject *k = PyLong_FromSsize_t(key);
    if (k == NULL)
        return NULL;
    PyObject *v = PyDict_GetItemWithError(m->dict, k);
    Py_DECREF(k);
    return v;
}

/* the key of an int object as an array index, or -1 when it is not one */
static Py_ssize_t
memo_small_key(PyObject *key)
{
    if (!PyLong_CheckExact(key))
        return -1;
    int overflow = 0;
    long long k = PyLong_AsLongLongAndOverflow(key, &overflow);
    if (overflow || k < 0 || k >= MEMO_ARRAY)
        return -1;  /* (no error: an int always converts, or overflows) */
    return (Py_ssize_t)k;
}

/* memo[key] for an int object (borrowed; NULL with no exception set when missing) */
static PyObject *
memo_get_obj(memo_t *m, PyObject *key)
{
    Py_ssize_t k = memo_small_key(key);
    if (k >= 0)
        return memo_get(m, k);
    return PyDict_GetItemWithError(m->dict, key);
}

/* memo[key] = v for an int object */
static int
memo_put_obj(memo_t *m, PyObject *key, PyObject *v)
{
    Py_ssize_t k = memo_small_key(key);
    if (k >= 0)
        return memo_set_small(m, k, v);
    return PyDict_SetItem(m->dict, key, v);
}

/* start with the entries of ``dict`` (borrowed; kept as the dict of large keys) */
static int
memo_init(memo_t *m, PyObject *dict)
{
    m->v = NULL;
    m->cap = m->count = m->base = 0;
    m->dict = dict;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(dict, &pos, &k, &v)) {
        Py_ssize_t key = memo_small_key(k);
        if (key >= 0) {
            if (memo_set_small(m, key, v) < 0)
                return -1;
            m->base++;
        }
    }
    return 0;
}

/* release the array; with ``write``, its entries are put in the dict first */
static int
memo_finish(memo_t *m, int write)
{
    int r = 0;
    for (Py_ssize_t k = 0; k < m->cap; k++) {
        PyObject *v = m->v[k];
        if (v == NULL)
            continue;
        if (write && r == 0) {
            PyObject *ko = PyLong_FromSsize_t(k);
            if (ko == NULL || PyDict_SetItem(m->dict, ko, v) < 0)
                r = -1;
            Py_XDECREF(ko);
        }
        Py_DECREF(v);
    }
    PyMem_Free(m->v);
    m->v = NULL;
    m->cap = 0;
    return r;
}

/* The buffer of ``dataobj``, which must hold ``n`` bytes, ``start`` within them: 0, or -1
 * with an exception set (and nothing to release). */
static int
get_data(PyObject *dataobj, Py_ssize_t n, Py_ssize_t start, Py_buffer *view)
{
    if (PyObject_GetBuffer(dataobj, view, PyBUF_SIMPLE) < 0)
        return -1;
    if (view->len != n || start < 0 || start > n) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "bad length or start");
        return -1;
    }
    return 0;
}

/* the argument as a Py_ssize_t, as PyArg_ParseTuple's "n" (-1 with an error set) */
static Py_ssize_t
arg_ssize(PyObject *v)
{
    if (PyFloat_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "an integer is required");
        return -1;
    }
    return PyNumber_AsSsize_t(v, PyExc_OverflowError);
}

/* args[1] and args[2] (the stream's length and the start offset) as sizes; -1 on error. */
static int
arg_n_start(PyObject *const *args, Py_ssize_t *n_arg, Py_ssize_t *start)
{
    *n_arg = arg_ssize(args[1]);
    if (*n_arg == -1 && PyErr_Occurred())
        return -1;
    *start = arg_ssize(args[2]);
    return *start == -1 && PyErr_Occurred() ? -1 : 0;
}

/* walk(data, n, start, memo, find_nl, track, watch, jumps, armed[, keep]) -> (Walk, armed) (see
 * _walk.py). The memo dict is updated at the end of the walk; with ``keep`` false, only when
 * the walk stopped at a STOP before the end of the data (when walk_all walks on with it). */
static PyObject *
cwalk(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9 && nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "walk() takes 9 or 10 arguments");
        return NULL;
    }
    PyObject *dataobj = args[0], *memo_d = args[3], *find_nl = args[4], *watch = args[6], *jumps = args[7];
    Py_ssize_t n_arg, start;
    if (arg_n_start(args, &n_arg, &start) < 0)
        return NULL;
    if (!PyDict_Check(memo_d) || !PyFrozenSet_Check(watch)) {
        PyErr_SetString(PyExc_TypeError, "walk() takes a dict memo and a frozenset watch");
        return NULL;
    }
    int track = PyObject_IsTrue(args[5]), armed = PyObject_IsTrue(args[8]);
    int keep = nargs == 10 ? PyObject_IsTrue(args[9]) : 1;
    if (track < 0 || armed < 0 || keep < 0)
        return NULL;
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "_cwalk.setup() was not called");
        return NULL;
    }
    if (jumps != Py_None && !PyDict_Check(jumps)) {
        PyErr_SetString(PyExc_TypeError, "jumps must be a dict or None");
        return NULL;
    }
    Py_buffer view;
    if (get_data(dataobj, n_arg, start, &view) < 0)
        return NULL;
    const unsigned char *d = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    memo_t memo_s, *memo = &memo_s;
    if (memo_init(memo, memo_d) < 0) {
        memo_finish(memo, 0);
        PyBuffer_Release(&view);
        return NULL;
    }

    PyObject *stack = PyList_New(0);
    PyObject *globals = PyList_New(0), *calls = PyList_New(0), *ext_codes = PyList_New(0);
    PyObject *payloads = PyList_New(0), *escapes = PyList_New(0), *jumped = PyList_New(0);
    PyObject *error = NULL, *soft = NULL, *result = NULL;
    marks_t marks = {NULL, 0, 0};
    Py_ssize_t fence = 0, soft_off = 0, persids = 0, i = start, o = start, x;
    Py_ssize_t fend = n + 1;  /* end of the current FRAME; n + 1: none (see _walk.py) */
    int proto = 0, protocol = -1, stopped = 0;
    int watch_nonempty = PySet_GET_SIZE(watch) > 0;
    int watching = armed && watch_nonempty;
    unsigned op = 0;
    if (!stack || !globals || !calls || !ext_codes || !payloads || !escapes || !jumped)
        FAIL;

    for (;;) {
        if (i >= n)
            goto eof;
        op = d[i];
        if (i >= fend) {
            if (i > fend && soft == NULL) {
                PyObject *nm = opname_or(d[o], "?");
                if (nm == NULL)
                    FAIL;
                soft = PyUnicode_FromFormat("the argument of %U at offset %zd runs past the end of its FRAME "
                                            "(offset %zd): unpicklers read it differently", nm, o, fend);
                Py_DECREF(nm);
                if (soft == NULL)
                    FAIL;
                soft_off = o;
            }
            fend = n + 1;
        }
        o = i;
        switch (kinds[op]) {
        case K_PUSH:
            i += steps[op];
            PUSH_NONE();
            break;
        case K_MEMOIZE: {
            if (LEN() <= fence)
                ERRS("stack underflow");
            if (memo_put(memo, memo_len(memo), TOP(1)) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_SHORT_UNI: {
            PUSH(PyLong_FromSsize_t(i));
            NEED(2);
            Py_ssize_t ln = d[i + 1];
            if (track && ln >= 4 && i + 2 + ln <= n && PyList_GET_SIZE(payloads) < MAX_PAYLOADS) {
                if (is_prefix((unsigned)d[i + 2] << 8 | d[i + 3]) && add_payload(payloads, i, i + 2, ln) < 0)
                    FAIL;
            }
            i += 2 + ln;
            break;
        }
        case K_BINPUT: {
            Py_ssize_t key;
            if (memo_key(d, n, i, op, &key) < 0)
                goto eof;
            if (LEN() <= fence)
                ERRS("stack underflow");
            if (memo_put(memo, key, TOP(1)) < 0)
                FAIL;
            i += steps[op];
            break;
        }
        case K_BINGET: {
            Py_ssize_t key;
            if (memo_key(d, n, i, op, &key) < 0)
                goto eof;
            PyObject *v = memo_get(memo, key);
            if (v == NULL) {
                if (PyErr_Occurred())
                    FAIL;
                ERR("memo key %zd not found", key);
            }
            if (PyList_Append(stack, v) < 0)
                FAIL;
            i += steps[op];
            break;
        }
        case K_MARK:
            fence = LEN();
            if (marks_push(&marks, fence) < 0)
                FAIL;
            i += 1;
            break;
        case K_LINE: {
            const unsigned char *p = i + 1 < n ? memchr(d + i + 1, '\n', (size_t)(n - i - 1)) : NULL;
            if (p == NULL)
                ERRS("no newline-terminated argument");
            Py_ssize_t e1 = p - d;
            if (e1 == i + 1 && (op == 0x49 || op == 0x4C || op == 0x46 || op == 0x67 || op == 0x70))
                ERRS("an empty argument");
            if (op == 0x67 || op == 0x70) {  /* GET, PUT */
                Py_ssize_t alen = e1 + 1 - (i + 1);
                const unsigned char *z = memchr(d + i + 1, 0, (size_t)alen);
                if (z != NULL)
                    alen = z - (d + i + 1);
                PyObject *raw = PyBytes_FromStringAndSize((const char *)d + i + 1, alen);
                if (raw == NULL)
                    FAIL;
                PyObject *key = PyNumber_Long(raw);
                Py_DECREF(raw);
                if (key == NULL) {
                    if (!PyErr_ExceptionMatches(PyExc_ValueError))
                        FAIL;
                    PyErr_Clear();
                    ERRS("an argument that is not an integer");
                }
                if (op == 0x67) {
                    PyObject *v = memo_get_obj(memo, key);
                    if (v == NULL) {
                        if (PyErr_Occurred()) {
                            Py_DECREF(key);
                            FAIL;
                        }
                        error = PyUnicode_FromFormat("memo key %S not found", key);
                        Py_DECREF(key);
                        if (error == NULL)
                            FAIL;
                        goto stop;
                    }
                    Py_DECREF(key);
                    if (PyList_Append(stack, v) < 0)
                        FAIL;
                }
                else {
                    if (LEN() <= fence) {
                        Py_DECREF(key);
                        ERRS("stack underflow");
                    }
                    int neg = PyObject_RichCompareBool(key, Zero, Py_LT);
                    if (neg < 0) {
                        Py_DECREF(key);
                        FAIL;
                    }
                    if (neg) {
                        Py_DECREF(key);
                        ERRS("negative PUT argument");
                    }
                    int r = memo_put_obj(memo, key, TOP(1));
                    Py_DECREF(key);
                    if (r < 0)
                        FAIL;
                }
            }
            else if (op == 0x53 || op == 0x56) {  /* STRING, UNICODE */
                PUSH(PyLong_FromSsize_t(i));
                if (track && op == 0x56 && e1 - i > 4 && PyList_GET_SIZE(payloads) < MAX_PAYLOADS) {
                    if (is_prefix((unsigned)d[i + 1] << 8 | d[i + 2]) && add_payload(payloads, i, i + 1, e1 - i - 1) < 0)
                        FAIL;
                }
            }
            else {  /* INT, LONG, FLOAT, PERSID */
                PUSH_NONE();
                if (op == 0x50)
                    persids += 1;
            }
            i = e1 + 1;
            break;
        }
        case K_COUNTED: {
            unsigned c = argsizes[op];
            uint64_t ln;
            NEED(1 + c);
            if (c == 1)
                ln = d[i + 1];
            else if (c == 4) {
                ln = rd_u32(d + i + 1);
                if (op == 0x8B && ln >= 0x80000000u)
                    ERRS("a negative byte count");
            }
            else {
                ln = rd_u64(d + i + 1);
                if (ln > (uint64_t)PY_SSIZE_T_MAX)
                    ERR("length %llu exceeds the maximum size", (unsigned long long)ln);
            }
            Py_ssize_t a = i + 1 + c;
            int fits = ln <= (uint64_t)(n - a);
            if (track) {
                if (op == 0x42 || op == 0x43 || op == 0x8E || op == 0x96) {
                    PyObject *off = PyLong_FromSsize_t(i);
                    if (off == NULL)
                        FAIL;
                    PyObject *b = PyObject_CallOneArg(BlobType, off);
                    Py_DECREF(off);
                    PUSH(b);
                }
                else if (pushes_str[op])
                    PUSH(PyLong_FromSsize_t(i));
                else
                    PUSH_NONE();
                if (ln >= 4 && fits && op != 0x8A && op != 0x8B && PyList_GET_SIZE(payloads) < MAX_PAYLOADS) {
                    if (is_prefix((unsigned)d[a] << 8 | d[a + 1]) && add_payload(payloads, i, a, (Py_ssize_t)ln) < 0)
                        FAIL;
                }
            }
            else if (pushes_str[op])
                PUSH(PyLong_FromSsize_t(i));
            else
                PUSH_NONE();
            if (!fits) {
                i = n + 1;
                goto stop;
            }
            i = a + (Py_ssize_t)ln;
            break;
        }
        case K_SETITEM:
        case K_APPEND: {  /* the item(s) above the container go into it */
            Py_ssize_t c = kinds[op] == K_SETITEM ? 3 : 2;
            if (LEN() - c < fence)
                ERRS("stack underflow");
            PyObject *target = TOP(c);
            if (PyUnicode_CheckExact(target) && add_call(calls, i, opnames[op], target, NULL) < 0)
                FAIL;
            if (watching && note(stack, LEN() - c + 1, watch, escapes, i) < 0)
                FAIL;
            if (del_from(stack, LEN() - c + 1) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_FILL: {
            if (marks.len == 0)
                ERRS("could not find MARK");
            POP_MARK();
            if (x <= fence)
                ERRS("stack underflow");
            if (LEN() > x) {
                PyObject *target = PyList_GET_ITEM(stack, x - 1);
                if (PyUnicode_CheckExact(target) && add_call(calls, i, opnames[op], target, NULL) < 0)
                    FAIL;
                if (op == 0x75 && ((LEN() - x) & 1))
                    ERRS("odd number of items");
                if (watching && note(stack, x, watch, escapes, i) < 0)
                    FAIL;
                if (del_from(stack, x) < 0)
                    FAIL;
            }
            i += 1;
            break;
        }
        case K_TUPLE_N: {
            Py_ssize_t c = argsizes[op];
            if (LEN() - c < fence)
                ERRS("stack underflow");
            PyObject *pair = c < 3 ? args_value(((PyListObject *)stack)->ob_item + LEN() - c, c, track)
                                   : (Py_INCREF(Py_None), Py_None);
            if (pair == NULL)
                FAIL;
            if ((watching && note(stack, LEN() - c, watch, escapes, i) < 0)
                || (c > 1 && del_from(stack, LEN() - c + 1) < 0)) {
                Py_DECREF(pair);
                FAIL;
            }
            set_top(stack, pair);
            i += 1;
            break;
        }
        case K_COLLECT: {
            if (marks.len == 0)
                ERRS("could not find MARK");
            POP_MARK();
            if (op == 0x64 && ((LEN() - x) & 1))
                ERRS("odd number of items");
            if (watching && note(stack, x, watch, escapes, i) < 0)
                FAIL;
            PyObject *pair = op == 0x74 && LEN() - x < 3
                                 ? args_value(((PyListObject *)stack)->ob_item + x, LEN() - x, track)
                                 : (Py_INCREF(Py_None), Py_None);
            if (replace_from(stack, x, pair) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_REDUCE: {
            if (LEN() - 2 < fence)
                ERRS("stack underflow");
            PyObject *fn = TOP(2), *fargs = TOP(1);
            Py_INCREF(fn);
            Py_INCREF(fargs);
            if (del_from(stack, LEN() - 1) < 0) {
                Py_DECREF(fn);
                Py_DECREF(fargs);
                FAIL;
            }
            PyObject *newtop = NULL;
            int bad = 0;
            if (same_str(fn, s_getattr_name) && Py_IS_TYPE(fargs, (PyTypeObject *)AttrArgsType)) {
                /* getattr(X, "name"): the attribute fetched is as good as a global */
                if (add_call(calls, i, opnames[op], fn, NULL) < 0)
                    bad = 1;
                else {
                    PyObject *r = PyObject_CallFunction(GetattrFn, "OnOnO", dataobj, n, fargs, i, find_nl);
                    /* -> (GlobalRef, stack value, name) */
                    if (r == NULL || !PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 3) {
                        if (r != NULL)
                            PyErr_SetString(PyExc_TypeError, "_getattr_ref must return a 3-tuple");
                        Py_XDECREF(r);
                        bad = 1;
                    }
                    else {
                        if (PyList_Append(globals, PyTuple_GET_ITEM(r, 0)) < 0)
                            bad = 1;
                        else {
                            newtop = PyTuple_GET_ITEM(r, 1);
                            Py_INCREF(newtop);
                            if (arm(watch, watch_nonempty, PyTuple_GET_ITEM(r, 2), &watching, &armed) < 0)
                                bad = 1;
                        }
                        Py_DECREF(r);
                    }
                }
            }
            else if (Py_IS_TYPE(fargs, (PyTypeObject *)BlobArgsType) && PyUnicode_CheckExact(fn)) {
                if (PyTuple_GET_SIZE(fargs) == 1) {
                    PyObject *arg = PyNumber_Long(PyTuple_GET_ITEM(fargs, 0));
                    if (arg == NULL || add_call(calls, i, opnames[op], fn, arg) < 0)
                        bad = 1;
                    Py_XDECREF(arg);
                    if (!bad && (newtop = call_made(fn)) == NULL)
                        bad = 1;
                }
                else {
                    if (add_call(calls, i, opnames[op], fn, NULL) < 0)
                        bad = 1;
                    int latin1 = 0;
                    if (!bad && same_str(fn, s_codecs_encode)) {
                        PyObject *r = PyObject_CallFunction(Latin1Fn, "OnOO", dataobj, n, PyTuple_GET_ITEM(fargs, 1), find_nl);
                        if (r == NULL)
                            bad = 1;
                        else {
                            latin1 = PyObject_IsTrue(r);
                            Py_DECREF(r);
                            if (latin1 < 0)
                                bad = 1;
                        }
                    }
                    if (!bad) {
                        if (latin1)
                            newtop = PyObject_CallOneArg(BlobType, PyTuple_GET_ITEM(fargs, 0));
                        else
                            newtop = call_made(fn);
                        if (newtop == NULL)
                            bad = 1;
                    }
                }
            }
            else if ((newtop = call_result(calls, i, opnames[op], fn)) == NULL)
                bad = 1;
            Py_DECREF(fn);
            Py_DECREF(fargs);
            if (bad) {
                Py_XDECREF(newtop);
                FAIL;
            }
            set_top(stack, newtop);
            i += 1;
            break;
        }
        case K_BUILD: {
            if (LEN() - 2 < fence)
                ERRS("stack underflow");
            if (watching && note(stack, LEN() - 1, watch, escapes, i) < 0)
                FAIL;
            if (del_from(stack, LEN() - 1) < 0)
                FAIL;
            PyObject *inst = TOP(1);
            if (PyUnicode_Check(inst)) {
                PyObject *s = plain_str(inst);
                if (s == NULL)
                    FAIL;
                int r = add_call(calls, i, opnames[op], s, NULL);
                Py_DECREF(s);
                if (r < 0)
                    FAIL;
            }
            else if (add_call(calls, i, opnames[op], NULL, NULL) < 0)
                FAIL;
            i += 1;
            if (jumps != Py_None) {
                PyObject *ko = PyLong_FromSsize_t(o);
                if (ko == NULL)
                    FAIL;
                PyObject *j = PyDict_GetItemWithError(jumps, ko);
                Py_DECREF(ko);
                if (j == NULL && PyErr_Occurred())
                    FAIL;
                if (j != NULL) {
                    /* the unpickler reads raw data (joblib's array) from here, then goes on */
                    if (fend <= n && i != fend && soft == NULL) {
                        SOFT("the data read after BUILD at offset %zd starts inside a FRAME "
                             "(which ends at offset %zd): unpicklers read it differently", o, fend);
                        soft_off = o;
                    }
                    Py_INCREF(Py_None);
                    set_top(stack, Py_None);
                    PyObject *jo = PyLong_FromSsize_t(o);
                    if (jo == NULL || PyList_Append(jumped, jo) < 0) {
                        Py_XDECREF(jo);
                        FAIL;
                    }
                    Py_DECREF(jo);
                    fend = n + 1;
                    int ovf = 0;
                    Py_ssize_t jv = PyLong_Check(j) ? PyLong_AsSsize_t(j) : -1;
                    if (jv == -1 && PyErr_Occurred()) {
                        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
                            FAIL;
                        PyErr_Clear();
                        ovf = 1;
                    }
                    if (!PyLong_Check(j) || jv < 0) {
                        PyErr_SetString(PyExc_ValueError, "a jump target must be an offset in the buffer");
                        FAIL;
                    }
                    if (ovf || jv > n)
                        ERR("the data read after it runs to offset %S, past the end (%zd)", j, n);
                    i = jv;
                }
            }
            break;
        }
        case K_NEWOBJ: {
            Py_ssize_t c = op == 0x92 ? 3 : 2;
            if (LEN() - c < fence)
                ERRS("stack underflow");
            PyObject *cls = TOP(c);
            Py_INCREF(cls);
            PyObject *newtop = del_from(stack, LEN() - c + 1) < 0 ? NULL : call_result(calls, i, opnames[op], cls);
            Py_DECREF(cls);
            if (newtop == NULL)
                FAIL;
            set_top(stack, newtop);
            i += 1;
            break;
        }
        case K_STACK_GLOBAL: {
            if (LEN() - 2 < fence)
                ERRS("stack underflow");
            PyObject *mod_v = TOP(2), *name_v = TOP(1);
            PyObject *mod = NULL, *qual = NULL;
            if (PyLong_CheckExact(mod_v)) {
                Py_ssize_t off = PyLong_AsSsize_t(mod_v);
                if (off == -1 && PyErr_Occurred())
                    FAIL;
                mod = string_at(dataobj, d, n, off, find_nl);
                if (mod == NULL)
                    FAIL;
            }
            if (PyLong_CheckExact(name_v)) {
                Py_ssize_t off = PyLong_AsSsize_t(name_v);
                if (off == -1 && PyErr_Occurred()) {
                    Py_XDECREF(mod);
                    FAIL;
                }
                qual = string_at(dataobj, d, n, off, find_nl);
                if (qual == NULL) {
                    Py_XDECREF(mod);
                    FAIL;
                }
            }
            if (mod == Py_None)
                Py_CLEAR(mod);
            if (qual == Py_None)
                Py_CLEAR(qual);
            if (del_from(stack, LEN() - 1) < 0) {
                Py_XDECREF(mod);
                Py_XDECREF(qual);
                FAIL;
            }
            PyObject *name = NULL;
            int resolved = 0;
            PyObject *ref = global_ref(mod, qual, proto, i, s_stack_global, &name, &resolved);
            Py_XDECREF(mod);
            Py_XDECREF(qual);
            if (ref == NULL)
                FAIL;
            int r = PyList_Append(globals, ref);
            if (r == 0) {
                PyObject *top = resolved ? name : Py_None;
                Py_INCREF(top);
                set_top(stack, top);
                r = arm(watch, watch_nonempty, name, &watching, &armed);
            }
            Py_DECREF(ref);
            if (r < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_GLOBAL: {  /* GLOBAL, INST */
            const unsigned char *p1 = i + 1 < n ? memchr(d + i + 1, '\n', (size_t)(n - i - 1)) : NULL;
            Py_ssize_t e1 = p1 ? p1 - d : -1;
            const unsigned char *p2 = (e1 >= 0 && e1 + 1 < n) ? memchr(d + e1 + 1, '\n', (size_t)(n - e1 - 1)) : NULL;
            Py_ssize_t e2 = p2 ? p2 - d : -1;
            int utf8 = op == 0x63;
            if ((e2 >= 0 ? e2 : n) >= fend && soft == NULL) {
                SOFT("the module and name of %U at offset %zd run past the end of its FRAME (offset %zd): "
                     "unpicklers read them differently", opnames[op], i, fend);
                soft_off = i;
            }
            Py_ssize_t ma, mb, qa, qb;
            if (e2 < 0) {
                error = PyUnicode_FromString("no newline-terminated module and name");
                if (error == NULL)
                    FAIL;
                /* the pure-Python unpickler still imports: its readline returns the partial
                 * line, and [:-1] drops its last character */
                if (e1 < 0) {
                    ma = i + 1;
                    mb = n - 1 > ma ? n - 1 : ma;
                    qa = qb = 0;
                }
                else {
                    ma = i + 1;
                    mb = e1;
                    qa = e1 + 1;
                    qb = n - 1 > qa ? n - 1 : qa;
                }
            }
            else {
                ma = i + 1;
                mb = e1;
                qa = e1 + 1;
                qb = e2;
            }
            PyObject *mod = ascii_str((const char *)d + ma, mb - ma);
            if (mod == NULL && !PyErr_Occurred())
                mod = utf8 ? PyUnicode_DecodeUTF8((const char *)d + ma, mb - ma, "strict")
                           : PyUnicode_DecodeASCII((const char *)d + ma, mb - ma, "strict");
            PyObject *qual = NULL;
            if (mod != NULL) {
                qual = ascii_str((const char *)d + qa, qb - qa);
                if (qual == NULL && !PyErr_Occurred())
                    qual = utf8 ? PyUnicode_DecodeUTF8((const char *)d + qa, qb - qa, "strict")
                                : PyUnicode_DecodeASCII((const char *)d + qa, qb - qa, "strict");
            }
            if (qual == NULL) {
                Py_XDECREF(mod);
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                    FAIL;
                PyErr_Clear();
                if (error != NULL)
                    goto stop;
                ERR("a module or name that is not %s", utf8 ? "utf-8" : "ascii");
            }
            PyObject *name = NULL;
            int resolved = 0;
            if (error != NULL) {  /* the partial line */
                int r = 0;
                if (PyUnicode_GET_LENGTH(mod) > 0) {
                    PyObject *ref = global_ref(mod, qual, proto, i, opnames[op], &name, &resolved);
                    r = ref == NULL ? -1 : PyList_Append(globals, ref);
                    Py_XDECREF(ref);
                }
                Py_DECREF(mod);
                Py_DECREF(qual);
                if (r < 0)
                    FAIL;
                goto stop;
            }
            /* recorded before any check that may fail after it: the pure-Python unpickler
             * imports the module before it looks for INST's MARK */
            PyObject *ref = global_ref(mod, qual, proto, i, opnames[op], &name, &resolved);
            int empty = PyUnicode_GET_LENGTH(mod) == 0 || PyUnicode_GET_LENGTH(qual) == 0;
            Py_DECREF(mod);
            Py_DECREF(qual);
            if (ref == NULL)
                FAIL;
            if (PyList_Append(globals, ref) < 0) {
                Py_DECREF(ref);
                FAIL;
            }
            Py_INCREF(name);
            Py_DECREF(ref);
            if (empty) {
                Py_DECREF(name);
                ERRS("an empty module or name");
            }
            if (op == 0x69) {  /* INST: the arguments are the items above the MARK */
                if (marks.len == 0) {
                    Py_DECREF(name);
                    ERRS("could not find MARK");
                }
                POP_MARK();
                if ((watching && note(stack, x, watch, escapes, i) < 0) || del_from(stack, x) < 0
                    || add_call(calls, i, opnames[op], resolved ? name : NULL, NULL) < 0) {
                    Py_DECREF(name);
                    FAIL;
                }
                PyObject *m = call_made(name);
                Py_DECREF(name);
                PUSH(m);
            }
            else {
                int r = PyList_Append(stack, name);
                if (r == 0)
                    r = arm(watch, watch_nonempty, name, &watching, &armed);
                Py_DECREF(name);
                if (r < 0)
                    FAIL;
            }
            i = e2 + 1;
            break;
        }
        case K_FRAME: {
            NEED(9);
            uint64_t ln = rd_u64(d + i + 1);
            i += 9;
            int past = ln > (uint64_t)(n - i);  /* also covers ln > PY_SSIZE_T_MAX */
            Py_ssize_t new_end = past ? n + 1 : i + (Py_ssize_t)ln;
            if (soft == NULL) {
                if (past) {
                    SOFT("FRAME at offset %zd declares %llu bytes, only %zd follow "
                         "(the C unpickler stops there, the pure-Python one reads on)", o, (unsigned long long)ln, n - i);
                    soft_off = o;
                }
                else if (fend <= n && (i > fend || (i < fend && fend < new_end))) {
                    SOFT("FRAME at offset %zd runs past the end of the FRAME it is in "
                         "(offset %zd): unpicklers read it differently", o, fend);
                    soft_off = o;
                }
            }
            if (fend > n || new_end > fend || i >= fend)
                fend = new_end;
            break;
        }
        case K_PROTO: {
            NEED(2);
            unsigned v = d[i + 1];
            if (v > 5)
                ERR("unsupported pickle protocol %u", v);
            proto = (int)v;
            if (protocol < 0)
                protocol = (int)v;
            i += 2;
            break;
        }
        case K_STOP:
            if (LEN() <= fence)
                ERRS("stack underflow");
            stopped = 1;
            i += 1;
            if (i < fend && fend <= n && soft == NULL) {
                /* loaders reading a file skip the rest of the frame, others do not */
                SOFT("STOP at offset %zd leaves %zd bytes of its FRAME unread: "
                     "unpicklers disagree on where the next pickle starts", o, fend - i);
                soft_off = o;
            }
            goto stop;
        case K_OBJ: {
            if (marks.len == 0)
                ERRS("could not find MARK");
            POP_MARK();
            if (LEN() - x < 1)
                ERRS("stack underflow");
            PyObject *cls = PyList_GET_ITEM(stack, x);
            Py_INCREF(cls);
            PyObject *newv = NULL;
            if (!(watching && note(stack, x + 1, watch, escapes, i) < 0) && del_from(stack, x) == 0)
                newv = call_result(calls, i, opnames[op], cls);
            Py_DECREF(cls);
            PUSH(newv);
            i += 1;
            break;
        }
        case K_EXT: {
            unsigned c = argsizes[op];
            long code;
            NEED(1 + c);
            if (c == 1)
                code = d[i + 1];
            else if (c == 2)
                code = (long)d[i + 1] | (long)d[i + 2] << 8;
            else
                code = (long)(int32_t)rd_u32(d + i + 1);
            PyObject *co = PyLong_FromLong(code);
            if (co == NULL)
                FAIL;
            int r = PyList_Append(ext_codes, co);
            Py_DECREF(co);
            if (r < 0)
                FAIL;
            if (code <= 0)
                ERR("extension code %ld <= 0", code);
            PyObject *res = PyObject_CallFunction(ExtFn, "lin", code, proto, i);  /* -> (GlobalRef, stack value, name or None) */
            if (res == NULL)
                FAIL;
            if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 3) {
                Py_DECREF(res);
                PyErr_SetString(PyExc_TypeError, "_ext_ref must return a 3-tuple");
                FAIL;
            }
            r = PyList_Append(stack, PyTuple_GET_ITEM(res, 1));
            PyObject *nm = PyTuple_GET_ITEM(res, 2);
            if (r == 0 && nm != Py_None)
                r = arm(watch, watch_nonempty, nm, &watching, &armed);
            if (r == 0)
                r = PyList_Append(globals, PyTuple_GET_ITEM(res, 0));
            Py_DECREF(res);
            if (r < 0)
                FAIL;
            i += 1 + c;
            break;
        }
        case K_BINPERSID:
            if (LEN() <= fence)
                ERRS("stack underflow");
            if (watching && note(stack, LEN() - 1, watch, escapes, i) < 0)
                FAIL;
            Py_INCREF(Py_None);
            set_top(stack, Py_None);
            persids += 1;
            i += 1;
            break;
        case K_POP: {
            Py_ssize_t ln = LEN();
            if (marks.len && marks.v[marks.len - 1] == ln) {
                marks.len--;
                fence = marks.len ? marks.v[marks.len - 1] : 0;
            }
            else if (ln <= fence)
                ERRS("stack underflow");
            else if (del_from(stack, ln - 1) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_POP_MARK:
            if (marks.len == 0)
                ERRS("could not find MARK");
            POP_MARK();
            if (del_from(stack, x) < 0)
                FAIL;
            i += 1;
            break;
        case K_DUP:
            if (LEN() <= fence)
                ERRS("stack underflow");
            if (PyList_Append(stack, TOP(1)) < 0)
                FAIL;
            i += 1;
            break;
        case K_READONLY:
            if (LEN() <= fence)
                ERRS("stack underflow");
            Py_INCREF(Py_None);
            set_top(stack, Py_None);
            i += 1;
            break;
        default:
            ERR("unknown opcode 0x%02x", op);
        }
    }

eof:  /* a read ran past the end of the data (the Python walker's IndexError) */
stop:
    if (error != NULL) {
        PyObject *nm = opnames[d[o]];
        PyObject *e = nm ? PyUnicode_FromFormat("%U at %U (offset %zd)", error, nm, o)
                         : PyUnicode_FromFormat("%U (offset %zd)", error, o);
        Py_SETREF(error, e);
        if (error == NULL)
            FAIL;
    }
    else if (!stopped) {
        if (i == n && (o != i || n == start)) {
            /* the data ran out right before an opcode */
            error = PyUnicode_FromString("the data ends without a STOP opcode");
            o = n;
        }
        else {
            /* the data ran out in the argument of the opcode at o */
            PyObject *nm = opname_or(d[o], "");
            if (nm == NULL)
                FAIL;
            if (PyUnicode_GET_LENGTH(nm) == 0) {
                Py_DECREF(nm);
                nm = PyUnicode_FromFormat("opcode 0x%02x", (unsigned)d[o]);
                if (nm == NULL)
                    FAIL;
            }
            error = PyUnicode_FromFormat("the argument of %U at offset %zd runs past the end of the data (%zd bytes left)",
                                         nm, o, n - o - 1);
            if (error != NULL && o < fend && fend <= n && soft == NULL) {
                soft = PyUnicode_FromFormat("the argument of %U at offset %zd runs past the end of its FRAME (offset %zd)",
                                            nm, o, fend);
                if (soft == NULL)
                    Py_CLEAR(error);
                soft_off = o;
            }
            Py_DECREF(nm);
        }
        if (error == NULL)
            FAIL;
    }
    {
        Py_ssize_t end = stopped ? i : o;
        PyObject *err_off = error != NULL ? PyLong_FromSsize_t(o) : (Py_INCREF(Py_None), Py_None);
        if (err_off == NULL)
            FAIL;
        if (soft != NULL) {
            if (error == NULL) {
                error = soft;
                Py_INCREF(error);
            }
            else {
                PyObject *e = PyUnicode_FromFormat("%U; then: %U", soft, error);
                if (e == NULL) {
                    Py_DECREF(err_off);
                    FAIL;
                }
                Py_SETREF(error, e);
            }
            Py_SETREF(err_off, PyLong_FromSsize_t(soft_off));
            if (err_off == NULL)
                FAIL;
        }
        PyObject *protocol_o = protocol < 0 ? (Py_INCREF(Py_None), Py_None) : PyLong_FromLong(protocol);
        if (protocol_o == NULL) {
            Py_DECREF(err_off);
            FAIL;
        }
        PyObject *end_o = PyLong_FromSsize_t(end), *pers_o = PyLong_FromSsize_t(persids);
        PyObject *start_o = PyLong_FromSsize_t(start);
        if (end_o && pers_o && start_o) {
            PyObject *vals[13] = {globals, calls, end_o, stopped ? Py_True : Py_False, error, err_off, protocol_o,
                                  pers_o, ext_codes, start_o, payloads, escapes, jumped};
            PyObject *w = slotted_new(&SWalk, vals);
            if (w != NULL) {
                result = PyTuple_Pack(2, w, armed ? Py_True : Py_False);
                Py_DECREF(w);
            }
        }
        Py_XDECREF(end_o);
        Py_XDECREF(pers_o);
        Py_XDECREF(start_o);
        Py_DECREF(err_off);
        Py_DECREF(protocol_o);
    }

fail:
    if (memo_finish(memo, result != NULL && (keep || (stopped && i < n))) < 0)
        Py_CLEAR(result);
    PyBuffer_Release(&view);
    PyMem_Free(marks.v);
    Py_XDECREF(stack);
    Py_XDECREF(globals);
    Py_XDECREF(calls);
    Py_XDECREF(ext_codes);
    Py_XDECREF(payloads);
    Py_XDECREF(escapes);
    Py_XDECREF(jumped);
    Py_XDECREF(error);
    Py_XDECREF(soft);
    return result;
}

static int
set_static(PyObject **slot, PyObject *v)
{
    Py_XINCREF(v);
    Py_XSETREF(*slot, v);
    return 0;
}

/* setup(kinds, argsizes, steps, pushes_str, names, prefix2, made, attrargs, blob, blobargs,
 *       GlobalRef, CallSite, name_mapping, import_mapping, string_at, getattr_ref, ext_ref, latin1, Walk) */
static PyObject *
setup(PyObject *self, PyObject *args)
{
    PyObject *k, *a, *s, *ps, *nm, *pre;
    PyObject *made, *attr, *blob, *blobargs, *gref, *csite, *nmap, *imap, *sat, *gat, *ext, *lat, *walkt;
    if (!PyArg_ParseTuple(args, "OOOOO!OOOOOOOO!O!OOOOO", &k, &a, &s, &ps, &PyDict_Type, &nm, &pre, &made, &attr,
                          &blob, &blobargs, &gref, &csite, &PyDict_Type, &nmap, &PyDict_Type, &imap, &sat, &gat,
                          &ext, &lat, &walkt))
        return NULL;
    PyObject *seqs[4] = {k, a, s, ps};
    unsigned char *dst[4] = {kinds, argsizes, steps, pushes_str};
    for (int t = 0; t < 4; t++) {
        PyObject *f = PySequence_Fast(seqs[t], "expected a sequence");
        if (f == NULL)
            return NULL;
        if (PySequence_Fast_GET_SIZE(f) != 256) {
            Py_DECREF(f);
            PyErr_SetString(PyExc_ValueError, "expected 256 entries");
            return NULL;
        }
        for (int j = 0; j < 256; j++) {
            long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(f, j));
            if (v == -1 && PyErr_Occurred()) {
                Py_DECREF(f);
                return NULL;
            }
            dst[t][j] = (unsigned char)v;
        }
        Py_DECREF(f);
    }
    for (int j = 0; j < 256; j++) {
        PyObject *key = PyLong_FromLong(j);
        if (key == NULL)
            return NULL;
        PyObject *v = PyDict_GetItemWithError(nm, key);
        Py_DECREF(key);
        if (v == NULL && PyErr_Occurred())
            return NULL;
        if (v != NULL && !PyUnicode_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "opcode names must be str");
            return NULL;
        }
        set_static(&opnames[j], v);
        if (v != NULL)
            PyUnicode_InternInPlace(&opnames[j]);
    }
    memset(prefix2, 0, sizeof prefix2);
    PyObject *it = PyObject_GetIter(pre);
    if (it == NULL)
        return NULL;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        long v = PyLong_AsLong(item);
        Py_DECREF(item);
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(it);
            return NULL;
        }
        if (v >= 0 && v < 65536)
            prefix2[v >> 3] |= (unsigned char)(1u << (v & 7));
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    set_static(&MadeType, made);
    set_static(&AttrArgsType, attr);
    set_static(&BlobType, blob);
    set_static(&BlobArgsType, blobargs);
    static const char *const gref_f[] = {"name", "offset", "opcode", "resolved", "module", "qualname", "raw"};
    static const char *const csite_f[] = {"offset", "opcode", "target", "arg"};
    static const char *const walk_f[] = {"globals", "calls", "end", "stopped", "error", "error_offset", "protocol",
                                         "persistent_ids", "ext_codes", "start", "payloads", "escapes", "jumped"};
    if (slotted_init(&SGlobalRef, gref, gref_f, 7) < 0 || slotted_init(&SCallSite, csite, csite_f, 4) < 0
        || slotted_init(&SWalk, walkt, walk_f, 13) < 0)
        return NULL;
    if (MadeCache == NULL && (MadeCache = PyDict_New()) == NULL)
        return NULL;
    PyDict_Clear(MadeCache);
    set_static(&NameMapping, nmap);
    set_static(&ImportMapping, imap);
    set_static(&StringAtFn, sat);
    set_static(&GetattrFn, gat);
    set_static(&ExtFn, ext);
    set_static(&Latin1Fn, lat);
    ready = 1;
    Py_RETURN_NONE;
}


/* ------------------------------------------------------------------ joblib's layout
 * A fast path of _archives.joblib_layout: the same literal evaluator for the opcodes and
 * values benign joblib streams hold. Anything else -- whatever the Python evaluator would
 * refuse or call malformed, rare opcodes, a wrapper BUILD its helper rejects -- makes this
 * return None, and the caller runs the Python evaluator from the start (it alone words
 * refusals and errors). On STOP it returns True, having filled ``out`` (through the
 * wrapper-BUILD helper) exactly as the Python evaluator would. */
static PyObject *JOpaque, *JReconT, *JWrapperBuild, *JWrapperName, *JOldWrappers;
static PyObject *JResolveDType;
static PyObject *DTypeCache;  /* dtype_key -> the dtype resolved for it */
static slotted_t SGlobal, SObj, SWrapper, SDType;
static PyObject *s_attrs, *s_shape, *s_dtype, *s_align, *s_arrays, *s_array_bytes, *s_jumps, *s_hasobject, *s_itemsize;
static PyObject *s_state, *s_numpy_dtype, *s_builtins_bytes, *s_builtins_object;
static int jready = 0;

#define JMAX_LITERAL 4096

/* is v the wrapper class (new or old)? -1 on error */
static int
is_wrapper_class(PyObject *v)
{
    if (!Py_IS_TYPE(v, SGlobal.type))
        return 0;
    PyObject *nm = slotted_get(&SGlobal, v, 0);
    if (nm == NULL)
        return -1;
    int r = PyObject_RichCompareBool(nm, JWrapperName, Py_EQ);
    if (r == 0)
        r = PySet_Contains(JOldWrappers, nm);
    return r;
}

/* _check_free: 1 when some item is the wrapper class or a _ReconArgs (the Python evaluator
 * refuses), 0 when none, -1 on error */
static int
not_free(PyObject **items, Py_ssize_t k)
{
    for (Py_ssize_t j = 0; j < k; j++) {
        if (Py_IS_TYPE(items[j], (PyTypeObject *)JReconT))
            return 1;
        int w = is_wrapper_class(items[j]);
        if (w != 0)
            return w;
    }
    return 0;
}

static PyObject *
global_name_of(PyObject *v)  /* new ref: the name of a _Global, or None */
{
    if (Py_IS_TYPE(v, SGlobal.type)) {
        PyObject *nm = slotted_get(&SGlobal, v, 0);
        Py_XINCREF(nm);
        return nm;
    }
    Py_RETURN_NONE;
}

/* _Obj(name), _Global(name), _DType(args), _Wrapper(): as their __init__ make them */
static PyObject *
new_named(slotted_t *st, PyObject *name)
{
    PyObject *vals[1] = {name};
    return slotted_new(st, vals);
}

static PyObject *
new_dtype(PyObject *args)
{
    PyObject *vals[3] = {args, NULL, NULL};
    return slotted_new(&SDType, vals);
}

static PyObject *
new_wrapper(void)
{
    PyObject *attrs = PyDict_New();
    if (attrs == NULL)
        return NULL;
    PyObject *vals[1] = {attrs};
    PyObject *w = slotted_new(&SWrapper, vals);
    Py_DECREF(attrs);
    return w;
}

/* The key of a _DType's resolution, as bytes: everything _archives._key reads (the same
 * shapes: args and a flat state, or a structured state whose fields' dtypes have flat args
 * and states), each scalar with its type (str, int, bool, bytes, None) and each sequence
 * with its length, so two keys are equal only when _key's tuples are. Hashing and comparing
 * one bytes object costs far less than _key's nested tuples. */
typedef struct {
    char *p;
    Py_ssize_t len, cap;
} kbuf_t;

static int
kb_put(kbuf_t *b, const void *data, Py_ssize_t n)
{
    if (b->len + n > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *np = PyMem_Realloc(b->p, (size_t)cap);
        if (np == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, (size_t)n);
    b->len += n;
    return 0;
}

static int
kb_tag(kbuf_t *b, char tag, Py_ssize_t n)  /* a tag and a length */
{
    int64_t v = (int64_t)n;
    return kb_put(b, &tag, 1) < 0 || kb_put(b, &v, 8) < 0 ? -1 : 0;
}

/* the items of a tuple as _flat keys them: 1 written, 0 when _flat would give None (or an
 * int outside 64 bits: no key), -1 on error */
static int
kb_flat_items(kbuf_t *b, PyObject *const *items, Py_ssize_t k)
{
    if (kb_tag(b, 't', k) < 0)
        return -1;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *v = items[j];
        PyTypeObject *tp = Py_TYPE(v);
        int r;
        if (v == Py_None)
            r = kb_tag(b, 'n', 0);
        else if (tp == &PyBool_Type)
            r = kb_tag(b, 'b', v == Py_True);
        else if (tp == &PyLong_Type) {
            int overflow = 0;
            long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (x == -1 && PyErr_Occurred())
                return -1;
            if (overflow)
                return 0;
            r = kb_tag(b, 'i', (Py_ssize_t)x);
        }
        else if (tp == &PyBytes_Type)
            r = kb_tag(b, 'y', PyBytes_GET_SIZE(v)) < 0 ? -1 : kb_put(b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
        else if (tp == &PyUnicode_Type) {
            /* (a str's kind and data are canonical: equal strings have equal bytes) */
            Py_ssize_t kind = PyUnicode_KIND(v);
            r = kb_tag(b, (char)('0' + kind), PyUnicode_GET_LENGTH(v)) < 0
                    ? -1 : kb_put(b, PyUnicode_DATA(v), PyUnicode_GET_LENGTH(v) * kind);
        }
        else
            return 0;
        if (r < 0)
            return -1;
    }
    return 1;
}

static int
kb_flat(kbuf_t *b, PyObject *t)
{
    if (!PyTuple_CheckExact(t))
        return 0;
    return kb_flat_items(b, ((PyTupleObject *)t)->ob_item, PyTuple_GET_SIZE(t));
}

/* kb_flat of a _DType's state: None, or a flat tuple */
static int
kb_state(kbuf_t *b, PyObject *st)
{
    if (st == Py_None)
        return kb_tag(b, 'N', 0) < 0 ? -1 : 1;
    return kb_tag(b, 'S', 0) < 0 ? -1 : kb_flat(b, st);
}

/* the key of ``d`` (new ref: bytes, or None when _key gives None or it cannot be written) */
static PyObject *
dtype_key(PyObject *d)
{
    PyObject *args = slotted_get(&SDType, d, 0);
    PyObject *st = args ? slotted_get(&SDType, d, 1) : NULL;
    if (st == NULL)
        return NULL;
    kbuf_t b = {NULL, 0, 0};
    int r = kb_tag(&b, 'A', 0) < 0 ? -1 : kb_flat(&b, args);
    if (r == 1) {
        Py_ssize_t mark = b.len;
        r = kb_state(&b, st);
        if (r == 0) {  /* not flat: a structured dtype's state, or nothing _key keys */
            b.len = mark;
            Py_ssize_t k = PyTuple_CheckExact(st) ? PyTuple_GET_SIZE(st) : 0;
            PyObject **it = k ? ((PyTupleObject *)st)->ob_item : NULL;
            if ((k != 8 && k != 9) || it[2] != Py_None || !PyDict_CheckExact(it[4]))
                goto done;
            PyObject *rest[7];
            for (Py_ssize_t j = 0, t = 0; j < k; j++)
                if (j != 3 && j != 4)
                    rest[t++] = it[j];
            PyObject *fields = it[4];
            r = kb_tag(&b, 'D', 0) < 0 ? -1 : kb_flat_items(&b, rest, k - 2);
            if (r == 1)
                r = kb_flat(&b, it[3]);
            if (r == 1)
                r = kb_tag(&b, 'F', PyDict_GET_SIZE(fields)) < 0 ? -1 : 1;
            Py_ssize_t pos = 0;
            PyObject *name, *f;
            while (r == 1 && PyDict_Next(fields, &pos, &name, &f)) {
                Py_ssize_t fk = PyTuple_CheckExact(f) ? PyTuple_GET_SIZE(f) : 0;
                if (!PyUnicode_CheckExact(name) || (fk != 2 && fk != 3) || !Py_IS_TYPE(PyTuple_GET_ITEM(f, 0), SDType.type)) {
                    r = 0;
                    break;
                }
                PyObject *sub = PyTuple_GET_ITEM(f, 0);
                PyObject *sub_args = slotted_get(&SDType, sub, 0);
                PyObject *sub_state = sub_args ? slotted_get(&SDType, sub, 1) : NULL;
                if (sub_state == NULL) {
                    r = -1;
                    break;
                }
                r = kb_flat_items(&b, &name, 1);
                if (r == 1)
                    r = kb_flat(&b, sub_args);
                if (r == 1)
                    r = kb_state(&b, sub_state);
                if (r == 1)
                    r = kb_flat_items(&b, ((PyTupleObject *)f)->ob_item + 1, fk - 1);
            }
        }
    }
done:;
    PyObject *key = r < 0 ? NULL : r == 0 ? (Py_INCREF(Py_None), Py_None) : PyBytes_FromStringAndSize(b.p, b.len);
    PyMem_Free(b.p);
    return key;
}

/* _archives._resolve_dtype(d) for a _DType: its resolved dtype, or the one cached for its
 * key (recorded in it, as _resolve_dtype does), else the Python resolver's answer (which
 * raises _Refuse where it refuses), then cached; new ref */
static PyObject *
resolve_dtype(PyObject *d)
{
    PyObject *key = NULL;
    if (Py_IS_TYPE(d, SDType.type)) {
        PyObject *res = slotted_get(&SDType, d, 2);
        if (res == NULL)
            return NULL;
        if (res != Py_None) {
            Py_INCREF(res);
            return res;
        }
        key = dtype_key(d);
        if (key == NULL)
            return NULL;
        if (key != Py_None) {
            PyObject *hit = PyDict_GetItemWithError(DTypeCache, key);
            if (hit != NULL) {
                Py_DECREF(key);
                slotted_set(&SDType, d, 2, hit);
                Py_INCREF(hit);
                return hit;
            }
            if (PyErr_Occurred()) {
                Py_DECREF(key);
                return NULL;
            }
        }
    }
    PyObject *r = PyObject_CallOneArg(JResolveDType, d);
    if (r != NULL && key != NULL && key != Py_None && PyDict_GET_SIZE(DTypeCache) < 1024
        && PyDict_SetItem(DTypeCache, key, r) < 0)
        Py_CLEAR(r);
    Py_XDECREF(key);
    return r;
}

/* add ``delta`` to the int attribute ``name`` of ``obj`` */
static int
add_to_attr(PyObject *obj, PyObject *name, PyObject *delta)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    PyObject *sum = PyNumber_Add(v, delta);
    Py_DECREF(v);
    if (sum == NULL)
        return -1;
    int r = PyObject_SetAttr(obj, name, sum);
    Py_DECREF(sum);
    return r;
}

/* _archives._wrapper_build for the case joblib writes: a non-empty dict state, a ``shape``
 * tuple of ints >= 0, a ``dtype`` the Python resolver accepts and that holds no objects,
 * any alignment value the Python code accepts. Everything is checked before anything is
 * recorded in ``out``; -2 hands the case to the Python helper (which then does all of it,
 * raising where it refuses), -1 is an error; else the offset joblib reads opcodes again at. */
static Py_ssize_t
wrapper_fast(const unsigned char *d, Py_ssize_t n, Py_ssize_t o, Py_ssize_t i, PyObject *w, PyObject *state, PyObject *out)
{
    if (!PyDict_CheckExact(state) || PyDict_GET_SIZE(state) == 0)
        return -2;
    PyObject *attrs = slotted_get(&SWrapper, w, 0);
    if (attrs == NULL)
        return -1;
    Py_INCREF(attrs);
    Py_ssize_t result = -2;
    PyObject *dt = NULL, *flag = NULL, *size = NULL;
    if (!PyDict_CheckExact(attrs) || PyDict_Update(attrs, state) < 0)  /* _apply_build: idempotent */
        goto done;
    PyObject *shape = PyDict_GetItemWithError(attrs, s_shape);
    PyObject *dtype = shape ? PyDict_GetItemWithError(attrs, s_dtype) : NULL;
    if (dtype == NULL || !PyTuple_CheckExact(shape) || !Py_IS_TYPE(dtype, SDType.type))
        goto done;
    uint64_t count = 1;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(shape); k++) {
        PyObject *s = PyTuple_GET_ITEM(shape, k);
        if (!PyLong_CheckExact(s))
            goto done;
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(s, &overflow);
        if (v == -1 && PyErr_Occurred())
            goto done;
        if (overflow || v < 0 || (v && count > (UINT64_C(1) << 62) / (uint64_t)v))
            goto done;  /* negative, or a count near joblib's 64-bit limit: Python decides */
        count *= (uint64_t)v;
    }
    dt = resolve_dtype(dtype);
    if (dt == NULL)
        goto done;
    flag = PyObject_GetAttr(dt, s_hasobject);
    size = flag ? PyObject_GetAttr(dt, s_itemsize) : NULL;
    if (size == NULL || flag != Py_False || !PyLong_CheckExact(size))
        goto done;  /* an object array (a nested pickle follows): Python's */
    long itemsize = PyLong_AsLong(size);
    if (itemsize <= 0)
        goto done;
    Py_ssize_t pos = i;
    PyObject *align = PyDict_GetItemWithError(attrs, s_align);
    if (align == NULL && PyErr_Occurred())
        goto done;
    if (align != NULL && align != Py_None) {
        PyTypeObject *t = Py_TYPE(align);
        if (!(t == &PyLong_Type || t == &PyBool_Type || t == &PyUnicode_Type || t == &PyBytes_Type
              || t == &PyFloat_Type || t == &PyTuple_Type) || pos >= n)
            goto done;
        pos += 1 + d[pos];
    }
    if (count > (uint64_t)PY_SSIZE_T_MAX / (uint64_t)itemsize)
        goto done;
    Py_ssize_t nbytes = (Py_ssize_t)count * itemsize;
    if (nbytes > n - pos)
        goto done;  /* runs past the end: Python's (malformed) */
    /* all checked: record it as _array_extent and _wrapper_build do */
    PyObject *one = PyLong_FromLong(1), *nb = PyLong_FromSsize_t(nbytes), *ko = PyLong_FromSsize_t(o);
    PyObject *resume = PyLong_FromSsize_t(pos + nbytes);
    PyObject *jumps = PyObject_GetAttr(out, s_jumps);
    int ok = one && nb && ko && resume && jumps && add_to_attr(out, s_arrays, one) == 0
             && add_to_attr(out, s_array_bytes, nb) == 0 && PyObject_SetItem(jumps, ko, resume) == 0;
    Py_XDECREF(one);
    Py_XDECREF(nb);
    Py_XDECREF(ko);
    Py_XDECREF(resume);
    Py_XDECREF(jumps);
    result = ok ? pos + nbytes : -1;
done:
    if (result == -2 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_Exception))
            PyErr_Clear();  /* the Python helper meets it again, and decides */
        else
            result = -1;
    }
    Py_XDECREF(dt);
    Py_XDECREF(flag);
    Py_XDECREF(size);
    Py_DECREF(attrs);
    return result;
}

#define BAIL goto bail
#define JNEED(k) do { if (LEN() - (k) < (marks.len ? marks.v[marks.len - 1] : 0)) BAIL; } while (0)
#define JPUSH(v) do { PyObject *_v = (v); if (_v == NULL) FAIL; int _r = PyList_Append(stack, _v); Py_DECREF(_v); if (_r < 0) FAIL; } while (0)
#define JPOP_MARK() do { if (marks.len == 0) BAIL; x = marks.v[--marks.len]; } while (0)

static PyObject *
cjoblib(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "joblib_layout() takes 4 arguments");
        return NULL;
    }
    PyObject *dataobj = args[0], *out = args[3];
    Py_ssize_t n_arg, start;
    if (arg_n_start(args, &n_arg, &start) < 0)
        return NULL;
    if (!ready || !jready) {
        PyErr_SetString(PyExc_RuntimeError, "_cwalk.setup_joblib() was not called");
        return NULL;
    }
    Py_buffer view;
    if (get_data(dataobj, n_arg, start, &view) < 0)
        return NULL;
    const unsigned char *d = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    PyObject *stack = PyList_New(0), *memo_d = PyDict_New(), *result = NULL;
    marks_t marks = {NULL, 0, 0};
    memo_t memo_s, *memo = &memo_s;
    Py_ssize_t i = start, o = start, x;
    int proto = 0;
    /* (memo_d is empty: nothing to load; on failure, memo_finish releases what memo_init made) */
    if (memo_init(memo, memo_d == NULL ? EmptyDict : memo_d) < 0 || stack == NULL || memo_d == NULL)
        FAIL;
    for (;;) {
        if (i >= n)
            BAIL;
        unsigned op = d[i];
        o = i;
        switch (kinds[op]) {
        case K_BINGET: {
            Py_ssize_t key;
            if (memo_key(d, n, i, op, &key) < 0)
                BAIL;
            PyObject *v = memo_get(memo, key);
            if (v == NULL) {
                if (PyErr_Occurred())
                    FAIL;
                BAIL;
            }
            if (PyList_Append(stack, v) < 0)
                FAIL;
            i += 1 + argsizes[op];
            break;
        }
        case K_MEMOIZE: {
            JNEED(1);
            if (memo_put(memo, memo_len(memo), TOP(1)) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_PUSH: {
            Py_ssize_t c = argsizes[op];
            if (i + 1 + c > n)
                BAIL;
            const unsigned char *p = d + i + 1;
            switch (op) {
            case 0x4E: Py_INCREF(Py_None); JPUSH(Py_None); break;
            case 0x88: Py_INCREF(Py_True); JPUSH(Py_True); break;
            case 0x89: Py_INCREF(Py_False); JPUSH(Py_False); break;
            case 0x7D: JPUSH(PyDict_New()); break;
            case 0x5D: JPUSH(PyList_New(0)); break;
            case 0x29: Py_INCREF(EmptyTuple); JPUSH(EmptyTuple); break;
            case 0x4A: JPUSH(PyLong_FromLong((long)(int32_t)rd_u32(p))); break;
            case 0x4B: JPUSH(PyLong_FromLong(p[0])); break;
            case 0x4D: JPUSH(PyLong_FromLong((long)p[0] | (long)p[1] << 8)); break;
            case 0x47: {
                uint64_t bits = 0;
                for (int b = 0; b < 8; b++)
                    bits = bits << 8 | p[b];
                double dv;
                memcpy(&dv, &bits, sizeof dv);
                JPUSH(PyFloat_FromDouble(dv));
                break;
            }
            default: Py_INCREF(JOpaque); JPUSH(JOpaque); break;  /* EMPTY_SET, NEXT_BUFFER */
            }
            i += 1 + c;
            break;
        }
        case K_SHORT_UNI: {
            if (n - i < 2)
                BAIL;
            Py_ssize_t ln = d[i + 1];
            if (i + 2 + ln > n)
                BAIL;
            PyObject *v = ascii_str((const char *)d + i + 2, ln);
            if (v == NULL && !PyErr_Occurred())
                v = PyUnicode_DecodeUTF8((const char *)d + i + 2, ln, "surrogatepass");
            if (v == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                    FAIL;
                PyErr_Clear();
                Py_INCREF(JOpaque);
                v = JOpaque;
            }
            JPUSH(v);
            i += 2 + ln;
            break;
        }
        case K_MARK:
            if (marks_push(&marks, LEN()) < 0)
                FAIL;
            i += 1;
            break;
        case K_BUILD: {
            JNEED(2);
            PyObject *state = TOP(1);
            Py_INCREF(state);
            if (del_from(stack, LEN() - 1) < 0) {
                Py_DECREF(state);
                FAIL;
            }
            PyObject *inst = TOP(1);
            int w = is_wrapper_class(inst);
            if (w != 0) {
                Py_DECREF(state);
                if (w < 0)
                    FAIL;
                BAIL;
            }
            i += 1;
            if (Py_IS_TYPE(inst, SWrapper.type)) {
                Py_ssize_t fast = wrapper_fast(d, n, o, i, inst, state, out);
                if (fast == -1) {
                    Py_DECREF(state);
                    FAIL;
                }
                /* -> where joblib reads opcodes again (having set out.jumps[o]), or raises */
                PyObject *r = fast >= 0 ? PyLong_FromSsize_t(fast)
                                        : PyObject_CallFunction(JWrapperBuild, "OnnnOOO", dataobj, n, o, i, inst, state, out);
                Py_DECREF(state);
                if (r == NULL) {
                    if (!PyErr_ExceptionMatches(PyExc_Exception))
                        FAIL;
                    PyErr_Clear();
                    BAIL;
                }
                Py_ssize_t resume = PyLong_AsSsize_t(r);
                Py_DECREF(r);
                if (resume == -1 && PyErr_Occurred())
                    FAIL;
                Py_INCREF(JOpaque);
                set_top(stack, JOpaque);
                if (resume > n || resume < i)
                    BAIL;
                i = resume;
            }
            else {
                int bad = not_free(&state, 1);
                if (bad == 0 && Py_IS_TYPE(inst, SDType.type)) {
                    slotted_set(&SDType, inst, 1, state);
                    slotted_set(&SDType, inst, 2, Py_None);
                }
                Py_DECREF(state);
                if (bad < 0)
                    FAIL;
                if (bad)
                    BAIL;
            }
            break;
        }
        case K_FILL: {
            JPOP_MARK();
            Py_ssize_t k = LEN() - x;
            if (k < 0)
                BAIL;
            int bad = not_free(((PyListObject *)stack)->ob_item + x, k);
            if (bad < 0)
                FAIL;
            if (bad || x == 0)
                BAIL;  /* refused, or nothing below the mark */
            PyObject *target = PyList_GET_ITEM(stack, x - 1);
            if (op == 0x75) {
                if (k & 1)
                    BAIL;
                if (PyDict_CheckExact(target)) {
                    for (Py_ssize_t j = x; j < x + k; j += 2) {
                        if (PyDict_SetItem(target, PyList_GET_ITEM(stack, j), PyList_GET_ITEM(stack, j + 1)) < 0) {
                            if (!PyErr_ExceptionMatches(PyExc_TypeError))
                                FAIL;
                            PyErr_Clear();
                            BAIL;  /* an unhashable key */
                        }
                    }
                }
            }
            else if (op == 0x65 && PyList_CheckExact(target)) {
                PyObject *items = PyList_GetSlice(stack, x, x + k);
                if (items == NULL)
                    FAIL;
                int r = PyList_SetSlice(target, PyList_GET_SIZE(target), PyList_GET_SIZE(target), items);
                Py_DECREF(items);
                if (r < 0)
                    FAIL;
            }
            if (del_from(stack, x) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_NEWOBJ: {
            Py_ssize_t c = op == 0x92 ? 3 : 2;
            JNEED(c);
            PyObject *cls = TOP(c);
            int bad = not_free(((PyListObject *)stack)->ob_item + LEN() - c + 1, c - 1);
            if (bad < 0)
                FAIL;
            if (bad)
                BAIL;
            int w = is_wrapper_class(cls);
            if (w < 0)
                FAIL;
            PyObject *nv;
            if (w) {
                PyObject *nm = slotted_get(&SGlobal, cls, 0);
                if (nm == NULL)
                    FAIL;
                int cur = PyObject_RichCompareBool(nm, JWrapperName, Py_EQ);
                if (cur < 0)
                    FAIL;
                if (!cur)
                    BAIL;  /* joblib < 0.10's wrappers: refused */
                nv = new_wrapper();
            }
            else {
                PyObject *nm = global_name_of(cls);
                if (nm == NULL)
                    FAIL;
                nv = new_named(&SObj, nm);
                Py_DECREF(nm);
            }
            if (nv == NULL)
                FAIL;
            if (del_from(stack, LEN() - c + 1) < 0) {
                Py_DECREF(nv);
                FAIL;
            }
            set_top(stack, nv);
            i += 1;
            break;
        }
        case K_TUPLE_N: {
            Py_ssize_t c = argsizes[op];
            JNEED(c);
            PyObject *t = PyList_GetSlice(stack, LEN() - c, LEN());
            if (t == NULL)
                FAIL;
            PyObject *tup = PyList_AsTuple(t);
            Py_DECREF(t);
            if (tup == NULL)
                FAIL;
            PyObject **it = ((PyTupleObject *)tup)->ob_item;
            int recon = 0;
            if (c == 3 && Py_IS_TYPE(it[0], SGlobal.type) && Py_IS_TYPE(it[1], SGlobal.type) && it[2] == Py_None) {
                PyObject *n0 = slotted_get(&SGlobal, it[0], 0), *n1 = n0 ? slotted_get(&SGlobal, it[1], 0) : NULL;
                if (n1 == NULL) {
                    Py_DECREF(tup);
                    FAIL;
                }
                recon = PyObject_RichCompareBool(n0, JWrapperName, Py_EQ);
                if (recon == 1)
                    recon = PyObject_RichCompareBool(n1, s_builtins_object, Py_EQ);
                if (recon < 0) {
                    Py_DECREF(tup);
                    FAIL;
                }
            }
            if (recon) {
                PyObject *r = PyObject_CallOneArg(JReconT, tup);
                Py_DECREF(tup);
                tup = r;
                if (tup == NULL)
                    FAIL;
            }
            else {
                int bad = not_free(it, c);
                if (bad) {
                    Py_DECREF(tup);
                    if (bad < 0)
                        FAIL;
                    BAIL;
                }
            }
            if (replace_from(stack, LEN() - c, tup) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_FRAME:
            i += 9;
            break;
        case K_BINPUT: {
            JNEED(1);
            Py_ssize_t key;
            if (memo_key(d, n, i, op, &key) < 0)
                BAIL;
            if (memo_put(memo, key, TOP(1)) < 0)
                FAIL;
            i += 1 + argsizes[op];
            break;
        }
        case K_COUNTED: {
            unsigned c = argsizes[op];
            if (n - i < 1 + (Py_ssize_t)c)
                BAIL;
            uint64_t ln = c == 1 ? d[i + 1] : c == 4 ? rd_u32(d + i + 1) : rd_u64(d + i + 1);
            if (op == 0x8B && ln >= 0x80000000u)
                BAIL;
            Py_ssize_t a = i + 1 + c;
            if (ln > (uint64_t)(n - a))
                BAIL;
            PyObject *v;
            if (ln > JMAX_LITERAL) {
                Py_INCREF(JOpaque);
                v = JOpaque;
            }
            else if (op == 0x8C || op == 0x58 || op == 0x8D || op == 0x55 || op == 0x54) {
                v = string_at(dataobj, d, n, i, Py_None);
                if (v == Py_None) {
                    Py_DECREF(v);
                    Py_INCREF(JOpaque);
                    v = JOpaque;
                }
            }
            else if (op == 0x8A || op == 0x8B)
                BAIL;  /* LONG1/LONG4: left to the Python evaluator */
            else
                v = PyBytes_FromStringAndSize((const char *)d + a, (Py_ssize_t)ln);
            JPUSH(v);
            i = a + (Py_ssize_t)ln;
            break;
        }
        case K_COLLECT: {
            JPOP_MARK();
            Py_ssize_t k = LEN() - x;
            if (k < 0)
                BAIL;
            PyObject **it = ((PyListObject *)stack)->ob_item + x;
            PyObject *v = NULL;
            if (op == 0x74 && k == 3 && Py_IS_TYPE(it[0], SGlobal.type) && Py_IS_TYPE(it[1], SGlobal.type) && it[2] == Py_None) {
                BAIL;  /* (wrapper, object, None) built with MARK ... TUPLE: rare, left to Python */
            }
            int bad = not_free(it, k);
            if (bad < 0)
                FAIL;
            if (bad)
                BAIL;
            if (op == 0x74) {
                PyObject *sl = PyList_GetSlice(stack, x, x + k);
                v = sl ? PyList_AsTuple(sl) : NULL;
                Py_XDECREF(sl);
            }
            else if (op == 0x6C)
                v = PyList_GetSlice(stack, x, x + k);
            else if (op == 0x64) {
                if (k & 1)
                    BAIL;
                v = PyDict_New();
                for (Py_ssize_t j = 0; v != NULL && j < k; j += 2) {
                    if (PyDict_SetItem(v, it[j], it[j + 1]) < 0) {
                        Py_CLEAR(v);
                        if (!PyErr_ExceptionMatches(PyExc_TypeError))
                            FAIL;
                        PyErr_Clear();
                        BAIL;
                    }
                }
            }
            else {
                Py_INCREF(JOpaque);
                v = JOpaque;
            }
            if (replace_from(stack, x, v) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_REDUCE: {
            JNEED(2);
            PyObject *fn = TOP(2), *fargs = TOP(1);
            if (Py_IS_TYPE(fargs, (PyTypeObject *)JReconT) || Py_IS_TYPE(fn, (PyTypeObject *)JReconT))
                BAIL;  /* copyreg._reconstructor(wrapper, object, None): protocols 0-1, left to Python */
            int w = is_wrapper_class(fn);
            if (w == 0)
                w = is_wrapper_class(fargs);
            if (w < 0)
                FAIL;
            if (w)
                BAIL;
            PyObject *name = global_name_of(fn);
            if (name == NULL)
                FAIL;
            PyObject *nv = NULL;
            if (same_str(name, s_numpy_dtype))
                nv = new_dtype(fargs);
            else if (same_str(name, s_codecs_encode)) {
                Py_DECREF(name);
                BAIL;  /* _codecs.encode: left to Python */
            }
            else if (same_str(name, s_builtins_bytes) && PyTuple_CheckExact(fargs) && PyTuple_GET_SIZE(fargs) == 0)
                nv = PyBytes_FromStringAndSize("", 0);
            else
                nv = new_named(&SObj, name);
            Py_DECREF(name);
            if (replace_from(stack, LEN() - 2, nv) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_STACK_GLOBAL: {
            JNEED(2);
            PyObject *mod = TOP(2), *qual = TOP(1);
            if (!PyUnicode_CheckExact(mod) || !PyUnicode_CheckExact(qual) || proto < 3)
                BAIL;  /* malformed, or Python 2 names to map: left to Python */
            PyObject *nm = dotted(mod, qual);
            if (nm == NULL)
                FAIL;
            PyObject *g = new_named(&SGlobal, nm);
            Py_DECREF(nm);
            if (replace_from(stack, LEN() - 2, g) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_SETITEM: {
            JNEED(3);
            PyObject **it = ((PyListObject *)stack)->ob_item + LEN() - 2;
            int bad = not_free(it, 2);
            if (bad < 0)
                FAIL;
            if (bad)
                BAIL;
            PyObject *target = TOP(3);
            if (PyDict_CheckExact(target) && PyDict_SetItem(target, it[0], it[1]) < 0) {
                if (!PyErr_ExceptionMatches(PyExc_TypeError))
                    FAIL;
                PyErr_Clear();
                BAIL;
            }
            if (del_from(stack, LEN() - 2) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_APPEND: {
            JNEED(2);
            PyObject *val = TOP(1);
            int bad = not_free(&val, 1);
            if (bad < 0)
                FAIL;
            if (bad)
                BAIL;
            PyObject *target = TOP(2);
            if (PyList_CheckExact(target) && PyList_Append(target, val) < 0)
                FAIL;
            if (del_from(stack, LEN() - 1) < 0)
                FAIL;
            i += 1;
            break;
        }
        case K_PROTO:
            if (n - i < 2)
                BAIL;
            proto = d[i + 1];
            i += 2;
            break;
        case K_STOP:
            Py_INCREF(Py_True);
            result = Py_True;
            goto done;
        case K_POP:
            if (marks.len && marks.v[marks.len - 1] == LEN())
                marks.len--;
            else {
                JNEED(1);
                if (del_from(stack, LEN() - 1) < 0)
                    FAIL;
            }
            i += 1;
            break;
        case K_POP_MARK:
            JPOP_MARK();
            if (del_from(stack, x) < 0)
                FAIL;
            i += 1;
            break;
        case K_DUP:
            JNEED(1);
            if (PyList_Append(stack, TOP(1)) < 0)
                FAIL;
            i += 1;
            break;
        case K_READONLY:
            JNEED(1);
            i += 1;
            break;
        default:  /* text opcodes, GLOBAL/INST, OBJ, EXT, persistent ids, unknown: Python's */
            BAIL;
        }
    }
bail:
    Py_INCREF(Py_None);
    result = Py_None;
done:
fail:
    (void)o;
    memo_finish(memo, 0);
    PyBuffer_Release(&view);
    PyMem_Free(marks.v);
    Py_XDECREF(stack);
    Py_XDECREF(memo_d);
    return result;
}

/* plain_walk(walk, watch, ok) -> the names of the walk's globals, False, or None: the per-walk
 * part of _scan._judge_plain. False when the walk has an error, an extension code, a
 * persistent id, an escape or a payload, a call with an argument or to a watched name, or a
 * global that is unresolved or fetched by GETATTR or EXT; else the list of its globals' names
 * when every one is in the set ``ok``; None otherwise (the caller's loop decides). */
static PyObject *
plain_walk(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyAnySet_Check(args[1]) || !PyAnySet_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "plain_walk(walk, watch, ok) takes a Walk and two sets");
        return NULL;
    }
    PyObject *w = args[0], *watch = args[1], *ok = args[2];
    if (!ready || !Py_IS_TYPE(w, SWalk.type))
        Py_RETURN_NONE;
    /* Walk slots: 0 globals, 1 calls, 4 error, 7 persistent_ids, 8 ext_codes, 10 payloads, 11 escapes */
    PyObject *v[13];
    for (int j = 0; j < 13; j++)
        if ((v[j] = SLOT(w, SWalk, j)) == NULL)
            Py_RETURN_NONE;
    PyObject *globals = v[0], *calls = v[1];
    if (!PyList_CheckExact(globals) || !PyList_CheckExact(calls) || !PyList_CheckExact(v[8]) || !PyList_CheckExact(v[10])
        || !PyList_CheckExact(v[11]) || !PyLong_CheckExact(v[7]))
        Py_RETURN_NONE;
    if (v[4] != Py_None || PyList_GET_SIZE(v[8]) || PyList_GET_SIZE(v[10]) || PyList_GET_SIZE(v[11]))
        Py_RETURN_FALSE;
    int pers = PyObject_IsTrue(v[7]);
    if (pers < 0)
        return NULL;
    if (pers)
        Py_RETURN_FALSE;
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(calls); j++) {
        PyObject *c = PyList_GET_ITEM(calls, j);
        if (!Py_IS_TYPE(c, SCallSite.type) || SLOT(c, SCallSite, 2) == NULL || SLOT(c, SCallSite, 3) == NULL)
            Py_RETURN_NONE;
        if (SLOT(c, SCallSite, 3) != Py_None)  /* arg */
            Py_RETURN_FALSE;
        PyObject *target = SLOT(c, SCallSite, 2);
        if (target != Py_None) {
            int in = PySet_Contains(watch, target);
            if (in < 0)
                return NULL;
            if (in)
                Py_RETURN_FALSE;
        }
    }
    Py_ssize_t k = PyList_GET_SIZE(globals);
    int all_ok = 1;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *g = PyList_GET_ITEM(globals, j);
        if (!Py_IS_TYPE(g, SGlobalRef.type))
            Py_RETURN_NONE;
        PyObject *name = SLOT(g, SGlobalRef, 0), *resolved = SLOT(g, SGlobalRef, 3), *opcode = SLOT(g, SGlobalRef, 2);
        if (name == NULL || resolved == NULL || opcode == NULL)
            Py_RETURN_NONE;
        int res = PyObject_IsTrue(resolved);
        if (res < 0)
            return NULL;
        if (!res)
            Py_RETURN_FALSE;
        int odd = PyUnicode_Check(opcode) && (PyUnicode_CompareWithASCIIString(opcode, "GETATTR") == 0
                                              || PyUnicode_CompareWithASCIIString(opcode, "EXT") == 0);
        if (odd)
            Py_RETURN_FALSE;
        if (!PyUnicode_Check(opcode))
            Py_RETURN_NONE;
        if (all_ok) {
            int in = PySet_Contains(ok, name);
            if (in < 0)
                return NULL;
            all_ok = in;
        }
    }
    if (!all_ok)
        Py_RETURN_NONE;
    PyObject *names = PyList_New(k);
    if (names == NULL)
        return NULL;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *name = SLOT(PyList_GET_ITEM(globals, j), SGlobalRef, 0);
        Py_INCREF(name);
        PyList_SET_ITEM(names, j, name);
    }
    return names;
}

static PyObject *
cdtype_key(PyObject *self, PyObject *d)
{
    if (!jready || !Py_IS_TYPE(d, SDType.type)) {
        PyErr_SetString(PyExc_TypeError, "dtype_key takes a _DType (after setup_joblib)");
        return NULL;
    }
    return dtype_key(d);
}

/* setup_joblib(opaque, Global, Obj, Wrapper, DType, ReconArgs, wrapper_build, wrapper_name, old_wrappers,
 *              resolve_dtype) */
static PyObject *
setup_joblib(PyObject *self, PyObject *args)
{
    PyObject *op, *g, *ob, *w, *dt, *rc, *wb, *wn, *old, *res;
    if (!PyArg_ParseTuple(args, "OOOOOOOUO!O", &op, &g, &ob, &w, &dt, &rc, &wb, &wn, &PyFrozenSet_Type, &old, &res))
        return NULL;
    static const char *const name_f[] = {"name"}, *const attrs_f[] = {"attrs"}, *const dtype_f[] = {"args", "state", "resolved"};
    if (slotted_init(&SGlobal, g, name_f, 1) < 0 || slotted_init(&SObj, ob, name_f, 1) < 0
        || slotted_init(&SWrapper, w, attrs_f, 1) < 0 || slotted_init(&SDType, dt, dtype_f, 3) < 0)
        return NULL;
    set_static(&JResolveDType, res);
    if (DTypeCache == NULL && (DTypeCache = PyDict_New()) == NULL)
        return NULL;
    PyDict_Clear(DTypeCache);
    set_static(&JOpaque, op);
    set_static(&JReconT, rc);
    set_static(&JWrapperBuild, wb);
    set_static(&JWrapperName, wn);
    set_static(&JOldWrappers, old);
    jready = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"walk", (PyCFunction)(void (*)(void))cwalk, METH_FASTCALL, "walk(data, n, start, memo, find_nl, track, watch, jumps, armed) -> (Walk, armed)"},
    {"setup", setup, METH_VARARGS, "setup(...): the opcode tables, types and helpers of _walk.py"},
    {"joblib_layout", (PyCFunction)(void (*)(void))cjoblib, METH_FASTCALL, "joblib_layout(data, n, start, out) -> True, or None: left to Python"},
    {"setup_joblib", setup_joblib, METH_VARARGS, "setup_joblib(...): the evaluator's types and helpers"},
    {"plain_walk", (PyCFunction)(void (*)(void))plain_walk, METH_FASTCALL, "plain_walk(walk, watch, ok) -> names, False or None (see _scan._judge_plain)"},
    {"dtype_key", cdtype_key, METH_O, "dtype_key(d) -> the C evaluator's key of a _DType (bytes or None; for tests)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_cwalk", "The pickle walker's main loop in C.", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__cwalk(void)
{
    EmptyTuple = PyTuple_New(0);
    EmptyDict = PyDict_New();
    Zero = PyLong_FromLong(0);
    if (EmptyTuple == NULL || EmptyDict == NULL || Zero == NULL)
        return NULL;
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_name, "name");
    INTERN(s_offset, "offset");
    INTERN(s_opcode, "opcode");
    INTERN(s_resolved, "resolved");
    INTERN(s_module, "module");
    INTERN(s_qualname, "qualname");
    INTERN(s_raw, "raw");
    INTERN(s_target, "target");
    INTERN(s_arg, "arg");
    INTERN(s_stack_global, "STACK_GLOBAL");
    INTERN(s_question, "?");
    INTERN(s_getattr_name, "builtins.getattr");
    INTERN(s_codecs_encode, "_codecs.encode");
    INTERN(s_state, "state");
    INTERN(s_numpy_dtype, "numpy.dtype");
    INTERN(s_builtins_bytes, "builtins.bytes");
    INTERN(s_builtins_object, "builtins.object");
    INTERN(s_attrs, "attrs");
    INTERN(s_shape, "shape");
    INTERN(s_dtype, "dtype");
    INTERN(s_align, "numpy_array_alignment_bytes");
    INTERN(s_arrays, "arrays");
    INTERN(s_array_bytes, "array_bytes");
    INTERN(s_jumps, "jumps");
    INTERN(s_hasobject, "hasobject");
    INTERN(s_itemsize, "itemsize");
#undef INTERN
    return PyModule_Create(&moddef);
}
