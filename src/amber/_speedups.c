/* Hot loops of amber's Python code, in C. Each function here has a pure-Python twin that
 * stays the reference (and the fallback where this module was not built); the tests check
 * that both give the same results.
 *
 * plain_scan(pairs, tuples): formats._json._plain_scan_py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

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

static PyMethodDef methods[] = {
    {"plain_scan", (PyCFunction)(void (*)(void))plain_scan, METH_FASTCALL,
     "plain_scan(pairs, tuples) -> the first (key, value) pair that is not plain, or None"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_speedups", "Hot loops of amber in C.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&moddef);
}
