/* Runs the program's suite; fails the program if any test failed. */
#include "testutil.h"

int main(void)
{
    return run_suite(true);
}
