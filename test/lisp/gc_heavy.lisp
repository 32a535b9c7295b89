; A GC-heavy program: long-lived structures mutated with young values (old-to-young pointers through
; vector-set!, set-car!, set-cdr! and set!), trees built top-down and bottom-up, closures that outlive
; many collections, string and symbol churn. Every result is checked against a value computed in a
; different way, and the heap is verified along the way. Run normally and under HEAPKIT_GC_STRESS.
(define (check name got expected)
  (if (equal? got expected)
      (begin (display name) (display " ok") (newline))
      (begin (display name) (display " FAILED: got ") (write got) (display " expected ") (write expected) (newline)
             (error "check failed" name))))

(define (iota n) (let loop ((i (- n 1)) (acc '())) (if (< i 0) acc (loop (- i 1) (cons i acc)))))
(define (sum l) (let loop ((l l) (s 0)) (if (null? l) s (loop (cdr l) (+ s (car l))))))

; 1. A long-lived vector whose slots are replaced by fresh lists, round after round.
(define table (make-vector 500 '()))
(gc)
(define (fill-round r)
  (let loop ((i 0))
    (if (< i 500)
        (begin (vector-set! table i (list i r (* i r) (number->string (+ i r))))
               (loop (+ i 1))))))
(let loop ((r 0)) (if (< r 20) (begin (fill-round r) (if (= (remainder r 5) 0) (gc-minor)) (loop (+ r 1)))))
(define (table-sum) (let loop ((i 0) (s 0)) (if (= i 500) s (loop (+ i 1) (+ s (car (cdr (cdr (vector-ref table i)))))))))
(check "vector slots" (table-sum) (* 19 (sum (iota 500))))
(check "strings in slots" (vector-ref table 7) (list 7 19 133 "26"))
(gc-verify)

; 2. Trees: bottom-up (fresh nodes only) and top-down (children stored into older parents).
(define (make-node l r) (vector l r 0))
(define (bottom-up d) (if (= d 0) (make-node '() '()) (make-node (bottom-up (- d 1)) (bottom-up (- d 1)))))
(define (populate d node)
  (if (> d 0)
      (begin (vector-set! node 0 (make-node '() '()))
             (vector-set! node 1 (make-node '() '()))
             (populate (- d 1) (vector-ref node 0))
             (populate (- d 1) (vector-ref node 1)))))
(define (count node) (if (null? node) 0 (+ 1 (count (vector-ref node 0)) (count (vector-ref node 1)))))
(define long-lived (make-node '() '()))
(populate 10 long-lived)
(gc)
(define (churn-trees k total)
  (if (= k 0) total
      (let ((a (bottom-up 7)) (b (make-node '() '())))
        (populate 7 b)
        (churn-trees (- k 1) (+ total (count a) (count b))))))
(check "trees" (churn-trees 20 0) (* 20 2 255))
(check "long-lived tree" (count long-lived) 2047)
(gc-verify)

; 3. Closures and environments that outlive many collections.
(define (make-counter start)
  (let ((n start)) (lambda () (set! n (+ n 1)) n)))
(define counters (map make-counter (iota 50)))
(define (bump-all k) (if (> k 0) (begin (for-each (lambda (c) (c)) counters) (iota 100) (bump-all (- k 1)))))
(bump-all 40)
(check "counters" (map (lambda (c) (c)) (list (car counters) (list-ref counters 49))) (list 41 90))
(define (compose f g) (lambda (x) (f (g x))))
(define add10 (let loop ((i 0) (f (lambda (x) x))) (if (= i 10) f (loop (+ i 1) (compose (lambda (x) (+ x 1)) f)))))
(gc)
(check "composed closures" (map add10 '(0 5)) '(10 15))

; 4. An association list updated in place (set-cdr! of old pairs with young values).
(define alist (map (lambda (i) (cons i '())) (iota 100)))
(gc)
(define (record! k v) (let ((cell (list-ref alist k))) (set-cdr! cell (cons v (cdr cell)))))
(let loop ((i 0)) (if (< i 2000) (begin (record! (remainder i 100) (list i (* i i))) (loop (+ i 1)))))
(check "alist lengths" (map (lambda (c) (length (cdr c))) (list (car alist) (list-ref alist 99))) '(20 20))
(check "alist newest" (car (cdr (list-ref alist 3))) (list 1903 (* 1903 1903)))

; 5. String and symbol churn: generated names interned while collections move the strings.
(define (name i) (string-append "sym-" (number->string i) "-" (substring "abcdefghij" 0 (remainder i 10))))
(define syms (map (lambda (i) (string->symbol (name i))) (iota 300)))
(gc)
(check "interning" (eq? (list-ref syms 123) (string->symbol "sym-123-abc")) #t)
(check "symbol names" (symbol->string (list-ref syms 45)) "sym-45-abcde")
(define big (let loop ((i 0) (s "")) (if (= i 200) s (loop (+ i 1) (string-append s (number->string (remainder i 10)))))))
(check "string length" (string-length big) 200)
(check "string content" (substring big 195 200) "56789")

; 6. Large vectors (the large-object space) holding young values.
(define large (make-vector 5000 #f))
(let loop ((i 0)) (if (< i 5000) (begin (vector-set! large i (cons i i)) (loop (+ i 1)))))
(gc-minor)
(let loop ((i 0)) (if (< i 5000) (begin (vector-set! large i (cons (car (vector-ref large i)) (* 2 i))) (loop (+ i 1)))))
(gc)
(check "large vector" (let loop ((i 0) (s 0)) (if (= i 5000) s (loop (+ i 1) (+ s (cdr (vector-ref large i)))))) (* 2 (sum (iota 5000))))
(gc-verify)
(check "collections happened" (> (gc-collections) 0) #t)
(display "done") (newline)
