/*
 * bank_account: BankAccount, whose balance a Lock keeps consistent while
 * five threads deposit and withdraw.
 *
 *   class BankAccount:
 *       def __init__(self, balance):
 *           self.balance = balance
 *           self.lock = threading.Lock()
 *       def deposit(self, amount):
 *           with self.lock:
 *               self.balance = self.balance + amount
 *               print(f"Deposit: {amount}, New Balance: {self.balance}")
 *       def withdraw(self, amount):
 *           with self.lock:
 *               if self.balance >= amount: ... print(f"Withdrawal: ...")
 *               else: print("Insufficient funds.")
 *
 *   account = BankAccount(1000)
 *   def perform_transactions():
 *       account.deposit(500)
 *       account.withdraw(200)
 *   five threads run perform_transactions; join each.
 *
 * `with self.lock:` is a pthread mutex locked and unlocked around the same
 * lines. The account is shared memory, so the pool must be a thread pool:
 * in a process pool each worker would change its own copy.
 */
#include "course.h"

#include <pthread.h>

struct bank_account {
    long balance;         /* guarded by lock */
    pthread_mutex_t lock; /* Python: threading.Lock() */
};

static void deposit(struct bank_account *a, long amount)
{
    pthread_mutex_lock(&a->lock);
    long new_balance = a->balance + amount;
    a->balance = new_balance;
    printf("Deposit: %ld, New Balance: %ld\n", amount, a->balance);
    pthread_mutex_unlock(&a->lock);
}

static void withdraw(struct bank_account *a, long amount)
{
    pthread_mutex_lock(&a->lock);
    if (a->balance >= amount) {
        long new_balance = a->balance - amount;
        a->balance = new_balance;
        printf("Withdrawal: %ld, New Balance: %ld\n", amount, a->balance);
    } else {
        printf("Insufficient funds.\n");
    }
    pthread_mutex_unlock(&a->lock);
}

static void perform_transactions(task_t *t)
{
    struct bank_account *account = (struct bank_account *)task_arg(t, NULL);
    deposit(account, 500);
    withdraw(account, 200);
}

int main(int argc, char **argv)
{
    int usage_rc = course_no_arguments(argc, argv, "bank_account");
    if (usage_rc >= 0)
        return usage_rc;
    struct bank_account account = {.balance = 1000, .lock = PTHREAD_MUTEX_INITIALIZER};
    future_t *threads[5];
    executor_t *ex = course_executor("thread", 5, NULL);
    if (!ex)
        return 1;
    for (int i = 0; i < 5; i++)
        threads[i] = executor_submit(ex, perform_transactions, &account, 0);
    int rc = 0;
    for (int i = 0; i < 5; i++) {
        if (future_result(threads[i], FUT_FOREVER, NULL, NULL) != 0)
            rc = 1;
        future_unref(threads[i]);
    }
    executor_free(ex);
    return rc;
}
