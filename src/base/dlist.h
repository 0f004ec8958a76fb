/*
 * dlist.h — an intrusive doubly linked list: a node lives inside the structure it links, so
 * appending, moving and unlinking are O(1) and never allocate.
 *
 * Contract: a node is either unlinked (both pointers NULL, as calloc leaves it) or in exactly
 * one list. The caller provides the locking. DLIST_ENTRY turns a node back into its structure.
 */
#ifndef ARCA_DLIST_H
#define ARCA_DLIST_H

#include <stdbool.h>
#include <stddef.h>

struct dnode {
    struct dnode *prev, *next;
};

struct dlist {
    struct dnode *head, *tail; /* head: the oldest entry */
};

#define DLIST_ENTRY(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

static inline bool dlist_linked(const struct dlist *l, const struct dnode *n)
{
    return n->prev || n->next || l->head == n;
}

static inline void dlist_remove(struct dlist *l, struct dnode *n)
{
    if (!dlist_linked(l, n))
        return;
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

/* Appends, or moves to the tail a node already in the list. */
static inline void dlist_append(struct dlist *l, struct dnode *n)
{
    dlist_remove(l, n);
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

/* Prepends, or moves to the head a node already in the list. */
static inline void dlist_prepend(struct dlist *l, struct dnode *n)
{
    dlist_remove(l, n);
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    else
        l->tail = n;
    l->head = n;
}

#endif
