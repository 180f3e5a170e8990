// Producer/consumer with std::thread, std::mutex and std::condition_variable.
//
// Usage: prodcons PRODUCERS CONSUMERS ITEMS WORK
//
// Each producer p makes ITEMS items, item i having the value mix64(p * ITEMS + i), after WORK
// rounds of busy work (so producers run while consumers wait on the condition variable). The
// queue is bounded (64 items): producers also wait, when it is full. Consumers add up the
// values and a second checksum (the sum of every value rotated by its own low 6 bits); both
// are independent of the order. Prints "ready" once every thread runs, "progress K" each time
// another eighth of the items has been consumed, and at the end
// "total COUNT SUM ROTSUM" (decimal, mod 2^64).
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

namespace {

std::mutex lock;
std::condition_variable not_empty;
std::condition_variable not_full;
std::deque<uint64_t> queue;
unsigned producers_left;
const size_t capacity = 64;

uint64_t consumed;
uint64_t sum;
uint64_t rotsum;
uint64_t next_progress;
uint64_t progress_step;
unsigned progress_printed;

volatile uint64_t sink;

void produce(unsigned p, uint64_t items, unsigned work)
{
    for (uint64_t i = 0; i < items; i++) {
        uint64_t value = mix64(p * items + i);
        uint64_t busy = value;
        for (unsigned w = 0; w < work; w++) {
            busy = mix64(busy);
        }
        sink = busy;
        std::unique_lock<std::mutex> guard(lock);
        not_full.wait(guard, [] { return queue.size() < capacity; });
        queue.push_back(value);
        not_empty.notify_one();
    }
    std::lock_guard<std::mutex> guard(lock);
    if (--producers_left == 0) {
        not_empty.notify_all();
    }
}

void consume()
{
    for (;;) {
        std::unique_lock<std::mutex> guard(lock);
        not_empty.wait(guard, [] { return !queue.empty() || producers_left == 0; });
        if (queue.empty()) {
            return;
        }
        uint64_t value = queue.front();
        queue.pop_front();
        not_full.notify_one();
        unsigned r = value & 63;
        consumed++;
        sum += value;
        rotsum += r ? (value << r) | (value >> (64 - r)) : value;
        if (consumed == next_progress) {
            next_progress += progress_step;
            std::printf("progress %u\n", ++progress_printed);
            std::fflush(stdout);
        }
    }
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 5) {
        std::fprintf(stderr, "usage: prodcons PRODUCERS CONSUMERS ITEMS WORK\n");
        return 2;
    }
    unsigned producers = std::strtoul(argv[1], nullptr, 10);
    unsigned consumers = std::strtoul(argv[2], nullptr, 10);
    uint64_t items = std::strtoull(argv[3], nullptr, 10);
    unsigned work = std::strtoul(argv[4], nullptr, 10);
    producers_left = producers;
    progress_step = producers * items / 8;
    next_progress = progress_step;

    std::vector<std::thread> threads;
    {
        // Nothing is produced before "ready" is out.
        std::lock_guard<std::mutex> guard(lock);
        for (unsigned c = 0; c < consumers; c++) {
            threads.emplace_back(consume);
        }
        for (unsigned p = 0; p < producers; p++) {
            threads.emplace_back(produce, p, items, work);
        }
        std::printf("ready\n");
        std::fflush(stdout);
    }
    for (auto &t : threads) {
        t.join();
    }
    std::printf("total %llu %llu %llu\n", (unsigned long long)consumed,
                (unsigned long long)sum, (unsigned long long)rotsum);
    return 0;
}
