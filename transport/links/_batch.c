/* Several datagrams per system call on a UDP socket: Linux's recvmmsg and
 * sendmmsg, for transport/links/batch.py (which says why, and what runs
 * where this was not built).
 *
 * Both calls are non-blocking and keep the interpreter lock: they never
 * wait, and the receive buffer below is shared by every caller, so only
 * one may use it at a time.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* Datagrams per system call, and room for the largest UDP datagram. */
#define SLOTS 16
#define SLOT_SIZE 65536

static char slots[SLOTS][SLOT_SIZE];
/* Set while a receive copies out of the slots. Making a tuple may run the
 * garbage collector, and with it a finalizer that receives (or lets the
 * lock go to a thread that does): such a receive must not write over the
 * slots being copied, so it takes nothing, and what waits stays in the
 * socket for the next call. */
static int copying = 0;

PyDoc_STRVAR(receive_doc,
"receive(fd, limit, sender) -> list[tuple[bytes, sender]]\n\n"
"Up to limit datagrams already waiting on socket fd, each paired with\n"
"sender (a connected socket's peer); [] if none is, or while another\n"
"receive is copying. OSError (such as ConnectionRefusedError) if the\n"
"socket reports one before any datagram.");

static PyObject *
batch_receive(PyObject *module, PyObject *args)
{
    int fd;
    Py_ssize_t limit;
    PyObject *sender;
    if (!PyArg_ParseTuple(args, "inO:receive", &fd, &limit, &sender)) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL || copying) {
        return out;
    }
    copying = 1;
    struct mmsghdr headers[SLOTS];
    struct iovec vectors[SLOTS];
    while (PyList_GET_SIZE(out) < limit) {
        Py_ssize_t wanted = limit - PyList_GET_SIZE(out);
        unsigned int n = wanted < SLOTS ? (unsigned int)wanted : SLOTS;
        memset(headers, 0, sizeof(headers[0]) * n);
        for (unsigned int i = 0; i < n; i++) {
            vectors[i].iov_base = slots[i];
            vectors[i].iov_len = SLOT_SIZE;
            headers[i].msg_hdr.msg_iov = &vectors[i];
            headers[i].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(fd, headers, n, MSG_DONTWAIT, NULL);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                || PyList_GET_SIZE(out) > 0) {
                break; /* (an error after some datagrams: the next call says) */
            }
            copying = 0;
            Py_DECREF(out);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        for (int i = 0; i < got; i++) {
            PyObject *data = PyBytes_FromStringAndSize(slots[i], headers[i].msg_len);
            if (data == NULL) {
                copying = 0;
                Py_DECREF(out);
                return NULL;
            }
            PyObject *pair = PyTuple_Pack(2, data, sender);
            Py_DECREF(data);
            if (pair == NULL || PyList_Append(out, pair) < 0) {
                copying = 0;
                Py_XDECREF(pair);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(pair);
        }
        if ((unsigned int)got < n) {
            break; /* nothing more waiting */
        }
    }
    copying = 0;
    return out;
}

PyDoc_STRVAR(send_doc,
"send(fd, datagrams) -> int\n\n"
"Send the datagrams (bytes-like) on connected socket fd, in order, as\n"
"many at a time as the kernel takes without waiting: how many went.\n"
"OSError if the first could not go.");

static PyObject *
batch_send(PyObject *module, PyObject *args)
{
    int fd;
    PyObject *given;
    if (!PyArg_ParseTuple(args, "iO:send", &fd, &given)) {
        return NULL;
    }
    PyObject *sequence = PySequence_Fast(given, "datagrams must be a sequence");
    if (sequence == NULL) {
        return NULL;
    }
    Py_ssize_t total = PySequence_Fast_GET_SIZE(sequence);
    PyObject **items = PySequence_Fast_ITEMS(sequence);
    Py_ssize_t sent = 0;
    struct mmsghdr headers[SLOTS];
    struct iovec vectors[SLOTS];
    Py_buffer views[SLOTS];
    while (sent < total) {
        Py_ssize_t n = total - sent < SLOTS ? total - sent : SLOTS;
        memset(headers, 0, sizeof(headers[0]) * (size_t)n);
        Py_ssize_t held = 0;
        for (; held < n; held++) {
            if (PyObject_GetBuffer(items[sent + held], &views[held], PyBUF_SIMPLE) < 0) {
                break;
            }
            vectors[held].iov_base = views[held].buf;
            vectors[held].iov_len = (size_t)views[held].len;
            headers[held].msg_hdr.msg_iov = &vectors[held];
            headers[held].msg_hdr.msg_iovlen = 1;
        }
        int went = held ? sendmmsg(fd, headers, (unsigned int)held, MSG_DONTWAIT) : 0;
        int error = errno;
        for (Py_ssize_t i = 0; i < held; i++) {
            PyBuffer_Release(&views[i]);
        }
        if (held < n) { /* not bytes-like: TypeError set */
            Py_DECREF(sequence);
            return NULL;
        }
        if (went < 0) {
            if (sent == 0) {
                Py_DECREF(sequence);
                errno = error;
                return PyErr_SetFromErrno(PyExc_OSError);
            }
            break;
        }
        sent += went;
        if (went < held) {
            break;
        }
    }
    Py_DECREF(sequence);
    return PyLong_FromSsize_t(sent);
}

static PyMethodDef methods[] = {
    {"receive", batch_receive, METH_VARARGS, receive_doc},
    {"send", batch_send, METH_VARARGS, send_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "transport.links._batch",
    "recvmmsg and sendmmsg for transport/links/batch.py",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__batch(void)
{
    PyObject *made = PyModule_Create(&module);
    /* What batch.py checks: an installed copy of another version may not
     * have these two calls as it knows them. */
    if (made != NULL && PyModule_AddIntConstant(made, "API", 1) < 0) {
        Py_DECREF(made);
        return NULL;
    }
    return made;
}
