#pragma once
// Cross-thread task queue: many producers (other shards, the ZooKeeper thread), one
// consumer (the reactor thread). Dmitry Vyukov's intrusive MPSC queue: push is one
// atomic exchange plus one store, so producers never block each other or the consumer.
//
// Concurrency: push() from any thread; pop() only from the single consumer. pop() can
// return nullptr while a push is half-way done (the producer was preempted between its
// exchange and its store); the producer's wake-up (see reactor::post) follows its push,
// so the consumer is woken again and will see the task then.
#include <atomic>
#include <functional>

namespace sluice::net {

class task_queue {
public:
    struct node {
        std::atomic<node*> next{nullptr};
        std::function<void()> fn;
    };

    task_queue() : _head(&_stub), _tail(&_stub) {}
    ~task_queue() {
        while (node* n = pop()) delete n;
    }
    task_queue(const task_queue&) = delete;
    task_queue& operator=(const task_queue&) = delete;

    void push(node* n) {
        n->next.store(nullptr, std::memory_order_relaxed);
        node* prev = _head.exchange(n, std::memory_order_acq_rel);
        prev->next.store(n, std::memory_order_release);
    }

    // Caller owns (and deletes) the returned node.
    node* pop() {
        node* tail = _tail;
        node* next = tail->next.load(std::memory_order_acquire);
        if (tail == &_stub) {
            if (next == nullptr) return nullptr;
            _tail = next;
            tail = next;
            next = next->next.load(std::memory_order_acquire);
        }
        if (next != nullptr) {
            _tail = next;
            return tail;
        }
        if (tail != _head.load(std::memory_order_acquire)) return nullptr;  // push in progress
        push(&_stub);
        next = tail->next.load(std::memory_order_acquire);
        if (next != nullptr) {
            _tail = next;
            return tail;
        }
        return nullptr;
    }

private:
    alignas(64) std::atomic<node*> _head;  // producers
    alignas(64) node* _tail;               // consumer
    node _stub;
};

}  // namespace sluice::net
