/*
 * deque.pml: the Chase-Lev deque of runtime/deque.c: push, take, pop_top_n and steal, with
 * one owner and two thieves, on a buffer of two slots that grows once to four.
 *
 * Memory model. Spin interleaves whole statements, i.e. sequential consistency; C11's
 * relaxed, acquire and release orders cannot be expressed. To say more than SC, the owner
 * runs on x86-TSO: its stores (of bottom, slots and the buffer index) go through a FIFO
 * store buffer that a separate process drains into memory at arbitrary moments, while the
 * owner reads its own latest stores (it is the only writer of those). A locked CAS and the
 * seq_cst fence (mfence) wait until the buffer is empty. Thieves only load and CAS, so
 * their accesses reach memory in program order. Every SC interleaving is one of these
 * (drain at once), so the model checks SC and TSO; the weaker C11 orders (ARM, POWER) are
 * argued in the comments of deque.c, after Le et al., PPoPP 2013.
 *
 * Checked: no element is taken twice, no taker ever gets an empty slot, and once everyone
 * is done every element was taken exactly once. Without take's seq_cst fence the owner
 * and a thief both take the last element (the store of bottom still in the buffer while
 * the owner loads top); run.sh checks that the model finds it:
 * must-fail: -DNO_TAKE_FENCE
 */

#ifndef ITEMS
#define ITEMS 3 /* elements 1..ITEMS; 0 is NULL */
#endif
#define THIEVES 2
#define STORE_BUFFER 6

/* Two buffers laid side by side in one array: buffer 0 has 2 slots, buffer 1 has 4. */
#define BASE(bi) ((bi) * 2)
#define MASK(bi) ((bi) == 0 -> 1 : 3)
#define AT(bi, i) (BASE(bi) + ((i) & MASK(bi)))
#define SLOTS 6

#define TO_BOTTOM 0
#define TO_SLOT 1
#define TO_BUF 2

/* Memory, as the thieves see it. */
short mem_top;
short mem_bottom;
byte mem_buf;
byte mem_slot[SLOTS];
chan store_buffer = [STORE_BUFFER] of { byte, byte, short }; /* what, slot index, value */

byte taken[ITEMS + 1];
bool done;
byte finished;

inline record(x)
{
    d_step {
        assert(x != 0);
        taken[x]++;
        assert(taken[x] == 1)
    }
}

/* The owner's stores: into its store buffer, and into its own view. */
inline store_bottom(v)
{
    atomic { store_buffer!TO_BOTTOM, 0, v; own_bottom = v }
}

inline store_slot(slot, v)
{
    atomic { store_buffer!TO_SLOT, slot, v; own_slot[slot] = v }
}

inline store_buf(v)
{
    atomic { store_buffer!TO_BUF, 0, v; own_buf = v }
}

inline push(v)
{
    b = own_bottom;
    t = mem_top;
    if
    :: b - t > MASK(own_buf) ->
        assert(own_buf == 0); /* ITEMS <= 4: the model grows once */
        i = t;
        do
        :: i < b -> store_slot(AT(1, i), own_slot[AT(0, i)]); i++
        :: else -> break
        od;
        store_buf(1)
    :: else
    fi;
    store_slot(AT(own_buf, b), v);
    store_bottom(b + 1)
}

inline take(x)
{
    b = own_bottom - 1;
    store_bottom(b);
#ifndef NO_TAKE_FENCE
    empty(store_buffer); /* atomic_thread_fence(seq_cst) */
#endif
    t = mem_top;
    if
    :: t > b ->
        x = 0;
        store_bottom(b + 1)
    :: t == b ->
        x = own_slot[AT(own_buf, b)];
        atomic {
            empty(store_buffer); /* a locked CAS drains the store buffer */
            if
            :: mem_top == t -> mem_top = t + 1
            :: else -> x = 0
            fi
        };
        store_bottom(b + 1)
    :: t < b ->
        x = own_slot[AT(own_buf, b)]
    fi
}

/* pop_top_n with max 1 or 2: the oldest one or two, with one CAS of top from t to t + n.
 * No fence: bottom is the owner's own. Thieves compete only through the CAS on top. */
inline pop_top(x, y)
{
    b = own_bottom;
    t = mem_top;
    won = false;
    do
    :: t >= b -> x = 0; y = 0; break
    :: else ->
        x = own_slot[AT(own_buf, t)];
        if
        :: t + 1 < b -> y = own_slot[AT(own_buf, t + 1)]; n = 2
        :: true -> y = 0; n = 1
        fi;
        atomic {
            empty(store_buffer);
            if
            :: mem_top == t -> mem_top = t + n; won = true
            :: else -> t = mem_top
            fi
        };
        if
        :: won -> break
        :: else
        fi
    od
}

proctype owner()
{
    short own_bottom;
    byte own_buf;
    byte own_slot[SLOTS];
    short b, t, i;
    byte x, y, n, next = 1;
    bool won;

    do
    :: next <= ITEMS -> push(next); next++
    :: take(x);
        if
        :: x != 0 -> record(x)
        :: else
        fi
    :: pop_top(x, y);
        if
        :: x != 0 -> record(x)
        :: else
        fi;
        if
        :: y != 0 -> record(y)
        :: else
        fi
    :: next > ITEMS -> break
    od;
    do /* drain: take returns NULL only when the deque is empty */
    :: take(x);
        if
        :: x != 0 -> record(x)
        :: else -> break
        fi
    od;
    done = true;
    finished++
}

proctype thief()
{
    short b, t;
    byte bi, x;

    do
    :: done -> break
    :: else ->
        t = mem_top;
        /* the seq_cst fence between the loads: TSO already keeps loads in order */
        b = mem_bottom;
        if
        :: t < b ->
            bi = mem_buf;
            x = mem_slot[AT(bi, t)]; /* read before the CAS */
            atomic {
                if
                :: mem_top == t -> mem_top = t + 1; record(x)
                :: else /* lost a race: -1 */
                fi
            }
        :: else
        fi
    od;
    finished++
}

proctype drain_store_buffer()
{
    byte what, index;
    short value;

end:
    do
    :: atomic {
        store_buffer?what, index, value;
        if
        :: what == TO_BOTTOM -> mem_bottom = value
        :: what == TO_SLOT -> mem_slot[index] = value
        :: what == TO_BUF -> mem_buf = value
        fi
    }
    od
}

init
{
    byte k;

    atomic {
        run drain_store_buffer();
        run owner();
        k = 0;
        do
        :: k < THIEVES -> run thief(); k++
        :: else -> break
        od
    };
    finished == THIEVES + 1;
    k = 1;
    do
    :: k <= ITEMS -> assert(taken[k] == 1); k++
    :: else -> break
    od
}
