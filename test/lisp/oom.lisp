; The heap limit (run with --max-heap=32): unbounded growth ends in a clean "out of memory" error,
; the program keeps running, and the memory held by the abandoned computation is reusable.
(define (grow n acc) (grow (+ n 1) (cons (make-vector 100 n) acc)))
(display "growing") (newline)
(grow 0 '())
(display "survived the limit") (newline)
(define (build n acc) (if (= n 0) (length acc) (build (- n 1) (cons (make-vector 10 n) acc))))
(display (build 20000 '())) (newline)
(grow 0 '())
(display (build 20000 '())) (newline)
(define too-big (make-vector 100000000 0))
(display "after a request larger than the limit") (newline)
(display (vector-length (make-vector 100000 0))) (newline)
