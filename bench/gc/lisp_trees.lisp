; The Lisp interpreter (examples/lisp) as a GC workload: binary trees of cons cells built by
; interpreted code, a long-lived tree and an association table updated with young values, closures
; and string churn. Every figure it prints is checked by bench/gc/runner.py.
(define (make-tree d) (if (= d 0) (cons '() '()) (cons (make-tree (- d 1)) (make-tree (- d 1)))))
(define (check-tree t) (if (null? (car t)) 1 (+ 1 (check-tree (car t)) (check-tree (cdr t)))))
(define long-lived (make-tree 14))
(define table (make-vector 1000 '()))
(define (iterations d) (let loop ((i 0) (n 1)) (if (= i (- 18 d)) n (loop (+ i 1) (* n 2)))))
(define (run-depth d)
  (let loop ((i 0) (sum 0))
    (if (= i (iterations d)) sum
        (begin (vector-set! table (remainder i 1000) (list d i (number->string i)))
               (loop (+ i 1) (+ sum (check-tree (make-tree d))))))))
(define (run d total) (if (> d 12) total (run (+ d 2) (+ total (run-depth d)))))
(define (make-adder n) (lambda (x) (+ x n)))
(define adders (map make-adder (list 1 2 3 4 5 6 7 8 9 10)))
(define result (run 4 0))
(display result) (newline)
(display (check-tree long-lived)) (newline)
(display (apply + (map (lambda (f) (f 0)) adders))) (newline)
(display (vector-ref table 7)) (newline)
