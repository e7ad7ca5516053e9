/* msc_meta.report._interleave: the entries of a long study list of `--json`, written
 * from column texts in one pass (report/json_out.py, _study_chunks).
 *
 * interleave(consts, columns, n) -> bytes
 *
 *   consts   m + 1 bytes: the constant texts before, between and after the m values
 *            of one entry (keys, layout, values that every entry shares);
 *   columns  m bytes: each a JSON array of n scalars as orjson writes it
 *            ("[1,2.5,null]", "[\"a\",\"b,c\"]"): numbers, true/false/null, strings;
 *   n        entries.
 *
 * Returns consts[0] col0[0] consts[1] col1[0] ... colm-1[0] consts[m], then the same for
 * entry 1, ... entry n - 1, with no separator between entries (the consts carry it).
 * This is the join of json_out's pattern filled column by column; it does what the
 * Python fallback there does, without a Python object per value.
 * A column that does not hold exactly n scalars raises ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* The end of the scalar starting at p (before end): the closing quote + 1 of a string,
 * else the next comma or end. NULL when a string is not closed or a value is nested. */
static const char *
value_end(const char *p, const char *end)
{
    if (p >= end) {
        return NULL;
    }
    if (*p == '"') {
        for (p++; p < end; p++) {
            if (*p == '\\') {
                p++;
            }
            else if (*p == '"') {
                return p + 1;
            }
        }
        return NULL;
    }
    if (*p == '[' || *p == '{') {
        return NULL;
    }
    const char *comma = memchr(p, ',', (size_t)(end - p));
    return comma ? comma : end;
}

static PyObject *
interleave(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *consts_arg, *columns_arg;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOn", &consts_arg, &columns_arg, &n)) {
        return NULL;
    }
    /* tuples of their own: the bytes stay alive while the GIL is released below, whatever
     * another thread does to the caller's lists */
    PyObject *consts = PySequence_Tuple(consts_arg);
    if (consts == NULL) {
        return NULL;
    }
    PyObject *columns = PySequence_Tuple(columns_arg);
    if (columns == NULL) {
        Py_DECREF(consts);
        return NULL;
    }
    PyObject *out = NULL;
    Py_ssize_t m = PyTuple_GET_SIZE(columns);
    const char **cp = PyMem_Calloc((size_t)(3 * m + 3), sizeof(char *));
    Py_ssize_t *clen = PyMem_Calloc((size_t)(m + 1), sizeof(Py_ssize_t));
    if (cp == NULL || clen == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const char **colp = cp + m + 1, **colend = cp + 2 * m + 2;
    if (n < 0 || PyTuple_GET_SIZE(consts) != m + 1) {
        PyErr_SetString(PyExc_ValueError, "need n >= 0 and one more const than columns");
        goto done;
    }
    Py_ssize_t per_entry = 0, total = 0;
    for (Py_ssize_t j = 0; j <= m; j++) {
        PyObject *c = PyTuple_GET_ITEM(consts, j);
        if (!PyBytes_Check(c)) {
            PyErr_SetString(PyExc_TypeError, "consts must be bytes");
            goto done;
        }
        cp[j] = PyBytes_AS_STRING(c);
        clen[j] = PyBytes_GET_SIZE(c);
        per_entry += clen[j];
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *c = PyTuple_GET_ITEM(columns, j);
        if (!PyBytes_Check(c)) {
            PyErr_SetString(PyExc_TypeError, "columns must be bytes");
            goto done;
        }
        const char *s = PyBytes_AS_STRING(c);
        Py_ssize_t len = PyBytes_GET_SIZE(c);
        /* n values of a byte or more and n - 1 commas between them */
        if (len < 2 || s[0] != '[' || s[len - 1] != ']' || (n == 0) != (len == 2)
                || (n > 0 && (len - 2 + 1) / 2 < n)) {
            PyErr_Format(PyExc_ValueError, "column %zd is not a JSON array of %zd values", j, n);
            goto done;
        }
        colp[j] = s + 1;
        colend[j] = s + len - 1;
        /* the values' texts: the array without its brackets and n - 1 commas */
        total += len - 2 - (n > 0 ? n - 1 : 0);
    }
    if (per_entry > 0 && n > (PY_SSIZE_T_MAX - total) / per_entry) {
        PyErr_SetString(PyExc_OverflowError, "the entries would not fit in one bytes object");
        goto done;
    }
    total += n * per_entry;
    out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) {
        goto done;
    }
    char *w = PyBytes_AS_STRING(out), *wend = w + total;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !bad; i++) {
        for (Py_ssize_t j = 0; j < m; j++) {
            const char *v = colp[j], *e = value_end(v, colend[j]);
            if (e == NULL || (i + 1 < n) != (e < colend[j]) || (e < colend[j] && *e != ',')
                    || wend - w < clen[j] + (e - v)) {
                bad = 1;
                break;
            }
            memcpy(w, cp[j], (size_t)clen[j]);
            w += clen[j];
            memcpy(w, v, (size_t)(e - v));
            w += e - v;
            colp[j] = e + 1;        /* past the comma */
        }
        if (!bad) {
            if (wend - w < clen[m]) {
                bad = 1;
                break;
            }
            memcpy(w, cp[m], (size_t)clen[m]);
            w += clen[m];
        }
    }
    Py_END_ALLOW_THREADS
    if (bad || w != wend) {
        PyErr_Format(PyExc_ValueError, "a column does not hold %zd JSON scalars", n);
        Py_CLEAR(out);
    }
done:
    PyMem_Free(cp);
    PyMem_Free(clen);
    Py_DECREF(consts);
    Py_DECREF(columns);
    return out;
}

static PyMethodDef methods[] = {
    {"interleave", interleave, METH_VARARGS,
     "interleave(consts, columns, n) -> bytes: n entries, each the consts with the next "
     "value of every column (a JSON array of n scalars) between them."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_interleave",
    "The entries of a long --json study list written from column texts (json_out).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__interleave(void)
{
    return PyModule_Create(&module);
}
